// Engine::ReadAsync and WriteAsync on real files opened O_DIRECT, where the
// engine has an io_uring ring: every request is answered exactly once, the
// bytes are those of the synchronous path (also across remapped sectors,
// which take it), fault rules are honoured (requests go synchronously while
// one is set), and a set closed after its requests were answered holds them.
// A failed asynchronous I/O of a real disk: tests/integration/direct_errors.sh.
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "tests/support/testharness.h"

namespace remapfs {
namespace {

using test::Pattern;

constexpr uint32_t kSs = 4096;
constexpr uint64_t kSectors = 2048;  // 8 MiB

// Records its one answer; Wait blocks until it came.
class Answer final : public Engine::IoDone {
 public:
  void Done(Status s) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    status_ = s;
    cv_.notify_all();
  }
  Status Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return calls_ != 0; });
    return status_;
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int calls_ = 0;
  Status status_;
};

class EngineAsync : public ::testing::Test {
 protected:
  void SetUp() override {
    paths_ = SetPaths{dir_.File("main.img"), dir_.File("spare.img"), dir_.File("set.db")};
    ASSERT_TRUE(Env::Default()->CreateFile(paths_.main, kSectors * kSs).ok());
    ASSERT_TRUE(CreateSet(Env::Default(), paths_, {kSs, kSpareHeaderSize + 256 * kSs}).ok());
    Open();
  }
  void Open() {
    EngineOptions options;
    options.direct_io = true;
    ASSERT_TRUE(Engine::Open(paths_, options, &engine_).ok());
    ASSERT_TRUE(engine_->async()) << "no io_uring here";
  }

  test::TempDir dir_;
  SetPaths paths_;
  std::unique_ptr<Engine> engine_;
};

// 4 threads, each on its own quarter of the image, write and read back
// requests of 1 to 16 sectors, some over remapped sectors, and keep what
// they wrote; the image then reads as they expect, before and after a
// reopen.
TEST_F(EngineAsync, ConcurrentRequestsReadBackWhatWasWritten) {
  for (uint64_t s = 3; s < kSectors; s += 97) ASSERT_TRUE(engine_->Remap(s).ok());
  constexpr int kThreads = 4;
  constexpr uint64_t kQuarter = kSectors / kThreads;
  std::vector<std::string> expected(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    expected[t].resize(kQuarter * kSs);
    ASSERT_TRUE(engine_->Read(t * kQuarter * kSs, kQuarter * kSs, expected[t].data()).ok());
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      AlignedBuffer wbuf, rbuf;
      for (int i = 0; i < 300; ++i) {
        const uint64_t count = 1 + rng() % 16, first = rng() % (kQuarter - count);
        const uint64_t offset = (t * kQuarter + first) * kSs, n = count * kSs;
        const std::string data = Pattern(n, t * 1000 + i);
        std::memcpy(wbuf.Get(n), data.data(), n);
        Answer wrote, read;
        engine_->WriteAsync(offset, n, wbuf.Get(n), &wrote);
        if (!wrote.Wait().ok()) ++failures;
        engine_->ReadAsync(offset, n, rbuf.Get(n), &read);
        if (!read.Wait().ok() || std::memcmp(rbuf.Get(n), data.data(), n) != 0) ++failures;
        if (wrote.calls() != 1 || read.calls() != 1) ++failures;
        expected[t].replace(first * kSs, n, data);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(engine_->Close().ok());
  Open();
  std::string back(kQuarter * kSs, '\0');
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_TRUE(engine_->Read(t * kQuarter * kSs, back.size(), back.data()).ok());
    EXPECT_TRUE(back == expected[t]) << "quarter " << t;
  }
  ASSERT_TRUE(engine_->Close().ok());
}

// Many requests in flight at once, none waited for until all are issued:
// each is answered once, and Close after the answers finds nothing left.
TEST_F(EngineAsync, ManyInFlightAreEachAnsweredOnce) {
  constexpr int kRequests = 200;
  std::vector<AlignedBuffer> bufs(kRequests);
  std::vector<Answer> answers(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    const std::string data = Pattern(kSs, i);
    std::memcpy(bufs[i].Get(kSs), data.data(), kSs);
    engine_->WriteAsync(uint64_t(i) * 7 * kSs, kSs, bufs[i].Get(kSs), &answers[i]);
  }
  for (auto& a : answers) EXPECT_TRUE(a.Wait().ok());
  for (auto& a : answers) EXPECT_EQ(a.calls(), 1);
  ASSERT_TRUE(engine_->Flush().ok());
  ASSERT_TRUE(engine_->Close().ok());
  Open();
  std::string back(kSs, '\0');
  for (int i = 0; i < kRequests; i += 17) {
    ASSERT_TRUE(engine_->Read(uint64_t(i) * 7 * kSs, kSs, back.data()).ok());
    EXPECT_EQ(back, Pattern(kSs, i)) << "request " << i;
  }
  ASSERT_TRUE(engine_->Close().ok());
}

// While a fault rule is set every request goes through the rules, so
// synchronously: answered before the call returns, with the rule's effect
// (a failed read of MAIN makes the sector pending, as Read does).
TEST_F(EngineAsync, AFaultRuleIsHonouredSynchronously) {
  FaultRule rule, added;
  rule.sectors = {5, 1};
  rule.op = FaultOp::kRead;
  ASSERT_TRUE(engine_->AddFaultRule(rule, &added).ok());
  AlignedBuffer buf;
  Answer failed, other;
  engine_->ReadAsync(5 * kSs, kSs, buf.Get(kSs), &failed);
  EXPECT_EQ(failed.calls(), 1) << "not answered before ReadAsync returned";
  EXPECT_EQ(failed.Wait().ToErrno(), EIO);
  EXPECT_EQ(engine_->GetHealth().pending_sectors, 1u);
  engine_->ReadAsync(100 * kSs, kSs, buf.Get(kSs), &other);
  EXPECT_EQ(other.calls(), 1);
  EXPECT_TRUE(other.Wait().ok());
  ASSERT_TRUE(engine_->Close().ok());
}

// A buffer that O_DIRECT cannot take goes the synchronous way, and works.
TEST_F(EngineAsync, AnUnalignedBufferIsServedSynchronously) {
  std::string data = Pattern(kSs + 1, 9);
  Answer wrote;
  engine_->WriteAsync(kSs, kSs, data.data() + 1, &wrote);
  EXPECT_EQ(wrote.calls(), 1);
  EXPECT_TRUE(wrote.Wait().ok());
  std::string back(kSs, '\0');
  ASSERT_TRUE(engine_->Read(kSs, kSs, back.data()).ok());
  EXPECT_EQ(back, data.substr(1));
  ASSERT_TRUE(engine_->Close().ok());
}

}  // namespace
}  // namespace remapfs
