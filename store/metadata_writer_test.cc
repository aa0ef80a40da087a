// MetaWriter: group commit on a real SQLite DB. Flush returns once what was
// queued before it is durable, data sync first; concurrent flushers all
// return; Stop commits what is queued and never hangs; Flush after Stop is
// an error, not a hang.
#include "store/metadata_writer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <thread>
#include <vector>

#include "store/remap_table.h"
#include "store/set_format.h"
#include "tests/support/testutil.h"

namespace remapfs {
namespace {

using namespace std::chrono_literals;

// Runs fn on its own thread; a hang is a test failure, not a stuck binary.
template <typename Fn>
void WithinDeadline(std::chrono::milliseconds limit, Fn fn) {
  auto done = std::async(std::launch::async, std::move(fn));
  if (done.wait_for(limit) != std::future_status::ready) {
    std::fprintf(stderr, "FATAL: did not return within %lld ms (a hang)\n", static_cast<long long>(limit.count()));
    std::fflush(stderr);
    std::abort();
  }
  done.get();
}

class MetaWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_.File("set.db");
    SetInfo info;
    info.uuid = NewUuid();
    info.sector_size = 512;
    info.main_size = 1 << 20;
    info.slot_count = 64;
    ASSERT_TRUE(MetaStore::Create(db_, info).ok());
    ASSERT_TRUE(MetaStore::Open(db_, false, &store_).ok());
  }
  void TearDown() override {
    writer_.reset();
    store_.reset();
  }

  void Start(std::chrono::milliseconds interval = 1h) {
    MetaWriter::Hooks hooks;
    hooks.sync_data = [this]() -> Status {
      ++syncs_;
      if (check_sync_) {
        // The data is synced before the mappings are committed: at this
        // point nothing of the batch is in the DB yet.
        sectors_at_sync_.push_back(Sectors().size());
      }
      if (fail_sync_) return Status::IOError("fdatasync SPARE: injected", EIO);
      return Status::OK();
    };
    hooks.on_durable = [this](uint64_t seq) {
      uint64_t cur = durable_seen_.load();
      while (seq > cur && !durable_seen_.compare_exchange_weak(cur, seq)) {
      }
    };
    writer_ = std::make_unique<MetaWriter>(store_.get(), &counters_, std::move(hooks), interval);
  }

  std::map<uint64_t, uint32_t> Sectors() {
    std::unique_ptr<MetaStore> ro;
    EXPECT_TRUE(MetaStore::Open(db_, true, &ro).ok());
    std::map<uint64_t, uint32_t> out;
    if (ro) {
      EXPECT_TRUE(ro->LoadSectors([&](uint64_t s, uint32_t slot) { out[s] = slot; }).ok());
    }
    return out;
  }

  uint64_t StoredCounter(const std::string& name) {
    std::unique_ptr<MetaStore> ro;
    EXPECT_TRUE(MetaStore::Open(db_, true, &ro).ok());
    std::vector<std::pair<std::string, uint64_t>> counters;
    if (ro) {
      EXPECT_TRUE(ro->LoadCounters(&counters).ok());
    }
    for (const auto& [n, v] : counters) {
      if (n == name) return v;
    }
    return 0;
  }

  test::TempDir dir_;
  std::string db_;
  std::unique_ptr<MetaStore> store_;
  Counters counters_;
  std::atomic<int> syncs_{0};
  std::atomic<bool> fail_sync_{false};
  bool check_sync_ = false;
  std::vector<size_t> sectors_at_sync_;
  std::atomic<uint64_t> durable_seen_{0};
  std::unique_ptr<MetaWriter> writer_;
};

TEST_F(MetaWriterTest, FlushSyncsDataThenCommitsWhatWasQueued) {
  check_sync_ = true;
  Start();
  EXPECT_EQ(writer_->Enqueue(PutSector{1, 1}), 1u);
  EXPECT_EQ(writer_->Enqueue(PutSector{2, kPendingSlot}), 2u);
  EXPECT_EQ(writer_->Enqueue(Event{1, EventKind::kRemapped, 1, 1, "test"}), 3u);
  EXPECT_EQ(writer_->durable_seq(), 0u);
  std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(Sectors().empty()) << "committed without a flush or the interval";

  Status s = writer_->Flush();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(writer_->durable_seq(), 3u);
  EXPECT_EQ(durable_seen_.load(), 3u);
  EXPECT_EQ(Sectors(), (std::map<uint64_t, uint32_t>{{1, 1}, {2, kPendingSlot}}));
  ASSERT_EQ(sectors_at_sync_.size(), 1u);
  EXPECT_EQ(sectors_at_sync_[0], 0u);

  // A flush with nothing queued still syncs the data (an fsync of the
  // exposed file must reach the disk) and returns.
  const int before = syncs_.load();
  ASSERT_TRUE(writer_->Flush().ok());
  EXPECT_GT(syncs_.load(), before);
  EXPECT_TRUE(writer_->commit_error().ok());
  EXPECT_TRUE(writer_->sync_error().ok());
}

TEST_F(MetaWriterTest, ChangesAreAppliedInOrder) {
  Start();
  writer_->Enqueue(PutSector{7, 1});
  writer_->Enqueue(EraseSector{7});
  writer_->Enqueue(PutSector{8, 2});
  writer_->Enqueue(PutSector{8, 3});
  ASSERT_TRUE(writer_->Flush().ok());
  EXPECT_EQ(Sectors(), (std::map<uint64_t, uint32_t>{{8, 3}}));
}

TEST_F(MetaWriterTest, ConcurrentFlushesAllReturnAndShareCommits) {
  Start();
  constexpr int kThreads = 8, kRounds = 10;
  std::atomic<int> failures{0};
  WithinDeadline(20s, [&] {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kRounds; ++i) {
          const uint64_t seq = writer_->Enqueue(PutSector{uint64_t(t * 1000 + i), uint32_t(t)});
          if (!writer_->Flush().ok() || writer_->durable_seq() < seq) ++failures;
        }
      });
    }
    for (auto& th : threads) th.join();
  });
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Sectors().size(), size_t{kThreads * kRounds});
  EXPECT_EQ(writer_->durable_seq(), uint64_t{kThreads * kRounds});
  EXPECT_LE(syncs_.load(), kThreads * kRounds);
}

TEST_F(MetaWriterTest, IntervalCommitsWithoutAFlush) {
  Start(10ms);
  writer_->Enqueue(PutSector{3, 3});
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (writer_->durable_seq() < 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(writer_->durable_seq(), 1u);
  EXPECT_EQ(Sectors(), (std::map<uint64_t, uint32_t>{{3, 3}}));
}

TEST_F(MetaWriterTest, StopCommitsWhatIsQueuedWithoutWaitingForTheInterval) {
  Start(1h);
  writer_->Enqueue(PutSector{1, 1});
  writer_->Enqueue(PutSector{2, 2});
  writer_->Enqueue(PutBadSlot{5});
  WithinDeadline(5s, [&] { EXPECT_TRUE(writer_->Stop().ok()); });
  EXPECT_EQ(writer_->durable_seq(), 3u);
  EXPECT_EQ(Sectors(), (std::map<uint64_t, uint32_t>{{1, 1}, {2, 2}}));
  WithinDeadline(5s, [&] { EXPECT_TRUE(writer_->Stop().ok()); });  // idempotent
}

TEST_F(MetaWriterTest, CountersAreSavedWithCommitsAndAtStop) {
  Start();
  counters_.Add(Counter::kReads, 5);
  writer_->Enqueue(PutSector{1, 1});
  ASSERT_TRUE(writer_->Flush().ok());
  EXPECT_EQ(StoredCounter("reads"), 5u);
  // Only a counter changed since: the final commit at Stop still saves it.
  counters_.Add(Counter::kReads, 2);
  ASSERT_TRUE(writer_->Stop().ok());
  EXPECT_EQ(StoredCounter("reads"), 7u);
}

TEST_F(MetaWriterTest, FlushAfterStopIsAnErrorNotAHang) {
  Start();
  ASSERT_TRUE(writer_->Stop().ok());
  WithinDeadline(5s, [&] {
    Status s = writer_->Flush();
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.ToErrno(), EIO);
  });
}

TEST_F(MetaWriterTest, StopWhileFlushersRaceNeverHangs) {
  Start(1h);
  std::atomic<bool> go{false};
  std::atomic<int> ok_flushes{0};
  std::vector<std::thread> threads;
  std::vector<std::vector<uint64_t>> acknowledged(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      while (!go) std::this_thread::yield();
      for (uint64_t i = 0;; ++i) {
        const uint64_t sector = uint64_t(t) * 100000 + i;
        writer_->Enqueue(PutSector{sector, 1});
        if (!writer_->Flush().ok()) return;
        acknowledged[t].push_back(sector);
        ++ok_flushes;
      }
    });
  }
  go = true;
  while (ok_flushes < 20) std::this_thread::sleep_for(1ms);
  WithinDeadline(10s, [&] {
    writer_->Stop();
    for (auto& th : threads) th.join();
  });
  // Every flush that said OK is durable.
  const auto stored = Sectors();
  for (const auto& sectors : acknowledged) {
    for (uint64_t s : sectors) EXPECT_EQ(stored.count(s), 1u) << s;
  }
}

// A kill -9 loses nothing a flush saw: the flush commits the counters even
// when no table change waits.
TEST_F(MetaWriterTest, FlushCommitsChangedCountersWithoutTableChanges) {
  Start();
  counters_.Add(Counter::kReads, 7);
  ASSERT_TRUE(writer_->Flush().ok());
  EXPECT_EQ(StoredCounter("reads"), 7u);
  counters_.Add(Counter::kReads, 2);
  ASSERT_TRUE(writer_->Flush().ok());
  EXPECT_EQ(StoredCounter("reads"), 9u);
}

// Linux reports a failed writeback once and may drop the pages: a later sync
// that returns OK proves nothing. So one failed data sync fails every later
// flush, and nothing queued is ever committed by this writer.
TEST_F(MetaWriterTest, FailedSyncIsRememberedAndNothingIsCommittedAfterIt) {
  Start();
  fail_sync_ = true;
  writer_->Enqueue(PutSector{4, 4});
  Status s = writer_->Flush();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.ToErrno(), EIO);
  EXPECT_FALSE(writer_->sync_error().ok());
  EXPECT_TRUE(writer_->commit_error().ok()) << "the DB did not fail";
  EXPECT_EQ(writer_->durable_seq(), 0u);
  EXPECT_EQ(durable_seen_.load(), 0u);
  EXPECT_TRUE(Sectors().empty()) << "a mapping became durable before its data";

  writer_->Enqueue(PutSector{5, 5});
  fail_sync_ = false;  // the device is back: its next fdatasync would say OK
  const int syncs = syncs_.load();
  for (int i = 0; i < 3; ++i) {
    s = writer_->Flush();
    EXPECT_FALSE(s.ok()) << "a flush was acknowledged after a failed data sync";
  }
  EXPECT_EQ(syncs_.load(), syncs) << "a sync after the failure proves nothing and is not relied on";
  EXPECT_EQ(writer_->durable_seq(), 0u);
  EXPECT_TRUE(Sectors().empty());
  // The orderly stop reports it (the set stays unclean) and commits nothing.
  WithinDeadline(5s, [&] { EXPECT_FALSE(writer_->Stop().ok()); });
  EXPECT_TRUE(Sectors().empty());
}

TEST_F(MetaWriterTest, StopWithFailingSyncReturnsTheErrorAndDoesNotHang) {
  Start();
  writer_->Enqueue(PutSector{4, 4});
  fail_sync_ = true;
  WithinDeadline(5s, [&] {
    Status s = writer_->Stop();
    EXPECT_FALSE(s.ok());
  });
  EXPECT_TRUE(Sectors().empty());
  WithinDeadline(5s, [&] { EXPECT_FALSE(writer_->Flush().ok()); });
}

}  // namespace
}  // namespace remapfs
