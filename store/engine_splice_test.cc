// Engine::SpliceRead on real files in page-cache mode: a read that is one
// run of MAIN or of slots reaches the pipe with the bytes Read gives, and is
// counted; what it cannot serve (a run of each, a pending sector, while a
// fault rule is set, O_DIRECT images, memory images) it declines having
// counted nothing, so that the caller's Read deals with it. What a failing
// disk does under a spliced read: tests/integration/read_fault.sh.
#include <fcntl.h>
#include <unistd.h>

#include "tests/support/testharness.h"

namespace remapfs {
namespace {

using test::CounterValue;
using test::Pattern;

constexpr uint32_t kSs = 4096;
constexpr uint64_t kSectors = 512;  // 2 MiB

// A pipe big enough for any read of these tests.
class Pipe {
 public:
  Pipe() {
    EXPECT_EQ(::pipe2(fds_, O_CLOEXEC | O_NONBLOCK), 0);
    EXPECT_GE(::fcntl(fds_[1], F_SETPIPE_SZ, 1 << 20), 1 << 20);
  }
  ~Pipe() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int in() const { return fds_[1]; }
  // Everything the pipe holds.
  std::string Drain() {
    std::string out;
    char buf[65536];
    for (ssize_t r; (r = ::read(fds_[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(r));
    return out;
  }

 private:
  int fds_[2] = {-1, -1};
};

class EngineSplice : public ::testing::Test {
 protected:
  void SetUp() override {
    paths_ = SetPaths{dir_.File("main.img"), dir_.File("spare.img"), dir_.File("set.db")};
    ASSERT_TRUE(Env::Default()->CreateFile(paths_.main, kSectors * kSs).ok());
    ASSERT_TRUE(CreateSet(Env::Default(), paths_, {kSs, kSpareHeaderSize + 64 * kSs}).ok());
    ASSERT_TRUE(Engine::Open(paths_, {}, &engine_).ok());
    // The image's bytes; sectors 100..107 remapped to slots 0..7 by writes
    // that failed on MAIN.
    image_ = Pattern(kSectors * kSs, 7);
    ASSERT_TRUE(test::AddWriteFault(engine_.get(), Device::kMain, 100, 8).ok());
    ASSERT_TRUE(engine_->Write(0, image_.size(), image_.data()).ok());
    engine_->ClearFaultRules();
    ASSERT_EQ(engine_->GetHealth().remapped_sectors, 8u);
  }
  void TearDown() override {
    if (engine_) {
      EXPECT_TRUE(engine_->Close().ok());
    }
  }
  uint64_t Reads() { return CounterValue(engine_->GetHealth(), Counter::kReads); }

  test::TempDir dir_;
  SetPaths paths_;
  std::unique_ptr<Engine> engine_;
  std::string image_;
};

TEST_F(EngineSplice, MovesTheBytesOfARunOfMainOrOfSlots) {
  Pipe pipe;
  const uint64_t before = Reads();
  // MAIN, unaligned at both ends and across many pages.
  ASSERT_TRUE(engine_->SpliceRead(3 * kSs + 100, 40 * kSs, pipe.in()));
  EXPECT_EQ(pipe.Drain(), image_.substr(3 * kSs + 100, 40 * kSs));
  // The slots of sectors 101..106.
  ASSERT_TRUE(engine_->SpliceRead(101 * kSs, 6 * kSs, pipe.in()));
  EXPECT_EQ(pipe.Drain(), image_.substr(101 * kSs, 6 * kSs));
  EXPECT_EQ(Reads(), before + 2);
}

TEST_F(EngineSplice, DeclinesWhatItCannotServeAndCountsNothing) {
  Pipe pipe;
  ASSERT_TRUE(engine_->MarkPending(300).ok());
  const uint64_t before = Reads();
  EXPECT_FALSE(engine_->SpliceRead(96 * kSs, 8 * kSs, pipe.in())) << "MAIN then slots";
  EXPECT_FALSE(engine_->SpliceRead(300 * kSs, kSs, pipe.in())) << "a pending sector";
  EXPECT_FALSE(engine_->SpliceRead(296 * kSs, 8 * kSs, pipe.in())) << "MAIN around a pending sector";
  EXPECT_FALSE(engine_->SpliceRead(kSectors * kSs - kSs, 2 * kSs, pipe.in())) << "past the end";
  EXPECT_FALSE(engine_->SpliceRead(0, 0, pipe.in())) << "nothing";
  // A fault rule, wherever it is, must see every read.
  FaultRule rule, added;
  rule.sectors = {400, 1};
  rule.op = FaultOp::kRead;
  ASSERT_TRUE(engine_->AddFaultRule(rule, &added).ok());
  EXPECT_FALSE(engine_->SpliceRead(0, 8 * kSs, pipe.in())) << "while a fault rule is set";
  EXPECT_EQ(pipe.Drain(), "");
  EXPECT_EQ(Reads(), before);
  engine_->ClearFaultRules();
  EXPECT_TRUE(engine_->SpliceRead(0, 8 * kSs, pipe.in())) << "once the rule is gone";
}

TEST_F(EngineSplice, DeclinesImagesWithoutAPageCache) {
  Pipe pipe;
  ASSERT_TRUE(engine_->Close().ok());
  EngineOptions direct;
  direct.direct_io = true;
  ASSERT_TRUE(Engine::Open(paths_, direct, &engine_).ok());
  EXPECT_FALSE(engine_->SpliceRead(0, 8 * kSs, pipe.in())) << "O_DIRECT";
  test::MemSet mem;
  auto e = mem.OpenOrDie();
  EXPECT_FALSE(e->SpliceRead(0, 4096, pipe.in())) << "a memory image";
  EXPECT_TRUE(e->Close().ok());
}

}  // namespace
}  // namespace remapfs
