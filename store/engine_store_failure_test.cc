// Failure of the metadata store itself: SQLite reports disk full or an I/O
// error while the writer commits. The errors come from FaultVfs, under the
// real MetaStore and MetaWriter. What must hold:
//   - the Flush that needed the commit fails with EIO; a later successful
//     commit (the writer retries the kept batch each cycle) makes it all
//     durable, and clears the error;
//   - writes that need a NEW remap fail with EIO while commits fail; other
//     writes and every read keep working;
//   - the condition is logged once per change of state, and shown in Health
//     (store_error, state "store-failing");
//   - a Close whose commit or checkpoint failed returns the error and leaves
//     the set unclean, with the reason in set_info.last_error when the DB
//     still takes that write; the next open warns, checks, shows it in
//     Health.previous_store_error and clears it;
//   - an open that cannot write the DB fails cleanly;
//   - nothing already durable is lost.
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <cerrno>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/fault_vfs.h"
#include "tests/support/testharness.h"

namespace remapfs {
namespace {

using namespace std::chrono_literals;
using test::LogCapture;

EngineOptions VfsOptions(std::chrono::milliseconds interval = 1h) {
  EngineOptions o;
  o.sqlite_vfs = FaultVfs::Name();
  o.commit_interval = interval;
  return o;
}

Status WriteSector(Engine* e, uint64_t sector, const std::string& data) {
  return e->Write(sector * e->sector_size(), data.size(), data.data());
}

// Waits (bounded) until pred() holds.
template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

SetInfo ReadInfo(const std::string& db) {
  std::unique_ptr<MetaStore> meta;
  Status s = MetaStore::Open(db, /*read_only=*/true, &meta);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return meta ? meta->info() : SetInfo{};
}

// A small set (4096-byte sectors, 8 slots) with its DB on FaultVfs; faults
// are cleared when the test ends.
class StoreFailure : public ::testing::Test {
 protected:
  ~StoreFailure() override { FaultVfs::ClearFaults(set_.paths.db); }

  std::unique_ptr<Engine> Open(std::chrono::milliseconds interval = 1h) { return set_.OpenOrDie(VfsOptions(interval)); }
  uint64_t Fail(VfsFile file, VfsOp op, int rc = 0, uint64_t count = 1, uint64_t skip = 0) {
    return FaultVfs::Inject(
        {.path_prefix = set_.paths.db, .file = file, .op = op, .rc = rc, .skip = skip, .count = count});
  }

  // Opens `set` with sector 3 = v1_ flushed and sector 5 = v2_ remapped (a
  // MAIN write fault), its mapping queued, not committed.
  void OpenWithAQueuedRemap(test::MemSet& set, std::unique_ptr<Engine>* e) {
    *e = set.OpenOrDie(VfsOptions());
    ASSERT_TRUE(WriteSector(e->get(), 3, v1_).ok());
    ASSERT_TRUE((*e)->Flush().ok());
    ASSERT_TRUE(test::AddWriteFault(e->get(), Device::kMain, 5).ok());
    ASSERT_TRUE(WriteSector(e->get(), 5, v2_).ok());
  }

  test::QuietLogs quiet_;
  test::MemSet set_{/*main_size=*/64 * 4096, /*slots=*/8, /*sector_size=*/4096};
  const std::string v1_ = test::Pattern(4096, 1), v2_ = test::Pattern(4096, 2), v3_ = test::Pattern(4096, 3);
};

struct CommitFault {
  const char* name;
  VfsOp op;
  int rc;
};
const CommitFault kCommitFaults[] = {
    {"WAL write fails (EIO)", VfsOp::kWrite, SQLITE_IOERR_WRITE},
    {"WAL write fails (disk full)", VfsOp::kWrite, SQLITE_FULL},
};

TEST_F(StoreFailure, FlushFailsWithEIOThenTheRetriedCommitMakesItAllDurable) {
  for (const CommitFault& cf : kCommitFaults) {
    SCOPED_TRACE(cf.name);
    test::MemSet set(64 * 4096, 8, 4096);
    std::unique_ptr<Engine> e;
    ASSERT_NO_FATAL_FAILURE(OpenWithAQueuedRemap(set, &e));
    const uint64_t id =
        FaultVfs::Inject({.path_prefix = set.paths.db, .file = VfsFile::kWal, .op = cf.op, .rc = cf.rc, .count = 1});
    Status s = e->Flush();
    EXPECT_EQ(FaultVfs::Fired(id), 1u);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.ToErrno(), EIO) << s.ToString();
    Health h = e->GetHealth();
    EXPECT_NE(h.store_error, "");
    EXPECT_EQ(h.State(), "store-failing");
    // Reads keep working.
    EXPECT_TRUE(test::ReadSector(e.get(), 3) == v1_);
    EXPECT_TRUE(test::ReadSector(e.get(), 5) == v2_);
    // The fault is spent: the next flush retries the kept batch.
    s = e->Flush();
    ASSERT_TRUE(s.ok()) << s.ToString();
    h = e->GetHealth();
    EXPECT_EQ(h.store_error, "");
    EXPECT_EQ(h.State(), "degraded");
    // Durable: a power cut right now keeps the remap and both sectors.
    CrashAndPowerCut(&e, &set.env, set.paths.db, /*seed=*/9, /*tear=*/true);
    ASSERT_NO_FATAL_FAILURE(test::ExpectCheckClean(set));
    e = set.OpenOrDie(VfsOptions());
    EXPECT_EQ(e->List(0, 64).size(), 1u);
    EXPECT_EQ(e->ListFaultRules().size(), 1u);
    EXPECT_TRUE(test::ReadSector(e.get(), 3) == v1_);
    EXPECT_TRUE(test::ReadSector(e.get(), 5) == v2_);
    ASSERT_TRUE(e->Close().ok());
  }
}

// A failed fsync of the WAL is not retried: Linux may have dropped the pages
// it was for while SQLite still reads them from the cache, so a later commit
// that syncs fine could stand on pages that are gone. Nothing more is
// committed in this run; the restart (here without a power cut, the case
// where the cache still holds those pages) checkpoints, which rewrites and
// syncs all of it, and a power cut after that loses nothing acknowledged.
TEST_F(StoreFailure, FailedWalSyncIsRememberedUntilTheSetIsReopened) {
  for (const bool orderly_stop : {true, false}) {
    SCOPED_TRACE(orderly_stop ? "orderly stop" : "kill -9");
    test::MemSet set(64 * 4096, 8, 4096);
    std::unique_ptr<Engine> e;
    ASSERT_NO_FATAL_FAILURE(OpenWithAQueuedRemap(set, &e));
    const uint64_t id = FaultVfs::Inject(
        {.path_prefix = set.paths.db, .file = VfsFile::kWal, .op = VfsOp::kSync, .rc = SQLITE_IOERR_FSYNC, .count = 1});
    EXPECT_EQ(e->Flush().ToErrno(), EIO);
    EXPECT_EQ(FaultVfs::Fired(id), 1u);
    // The fault is spent, and still no flush succeeds.
    EXPECT_EQ(e->Flush().ToErrno(), EIO);
    EXPECT_EQ(e->GetHealth().State(), "sync-failed");
    EXPECT_TRUE(test::ReadSector(e.get(), 5) == v2_) << "reads keep working";
    if (orderly_stop) {
      EXPECT_FALSE(e->Close().ok());
    } else {
      FaultVfs::Kill(set.paths.db);
      e->AbandonForTest();
      FaultVfs::Revive(set.paths.db);
    }
    e.reset();
    e = set.OpenOrDie(VfsOptions());
    EXPECT_FALSE(e->GetHealth().was_clean);
    ASSERT_TRUE(WriteSector(e.get(), 3, v3_).ok());
    ASSERT_TRUE(e->Flush().ok()) << "the reopened set commits again";
    CrashAndPowerCut(&e, &set.env, set.paths.db, /*seed=*/9, /*tear=*/true);
    ASSERT_NO_FATAL_FAILURE(test::ExpectCheckClean(set));
    e = set.OpenOrDie(VfsOptions());
    EXPECT_TRUE(test::ReadSector(e.get(), 3) == v3_);
    // The failed commit may have come back through the cache; its data was
    // synced before it, so then it is right.
    if (!e->List(5, 6).empty()) {
      EXPECT_TRUE(test::ReadSector(e.get(), 5) == v2_);
    }
    ASSERT_TRUE(e->Close().ok());
  }
}

TEST_F(StoreFailure, NewRemapsAreRefusedWhileCommitsFailOtherWritesAndReadsWork) {
  auto e = Open();
  ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 5, 2).ok());
  ASSERT_TRUE(e->Remap(20).ok());
  ASSERT_TRUE(e->Flush().ok());
  const uint64_t id = Fail(VfsFile::kWal, VfsOp::kWrite, SQLITE_FULL, VfsFault::kForever);
  ASSERT_TRUE(WriteSector(e.get(), 5, v1_).ok()) << "the store has not failed yet";
  Status s = e->Flush();
  ASSERT_EQ(s.ToErrno(), EIO) << s.ToString();
  ASSERT_GE(FaultVfs::Fired(id), 1u);

  // Sector 6 fails on MAIN and needs a new slot: refused.
  s = WriteSector(e.get(), 6, v2_);
  EXPECT_EQ(s.ToErrno(), EIO) << s.ToString();
  EXPECT_NE(s.message().find("metadata store"), std::string::npos) << s.ToString();
  s = e->Remap(30);
  EXPECT_EQ(s.ToErrno(), EIO) << s.ToString();
  // Writes that need no new slot work: MAIN, an old slot, a slot taken
  // before the failure.
  EXPECT_TRUE(WriteSector(e.get(), 3, v3_).ok());
  EXPECT_TRUE(WriteSector(e.get(), 20, v3_).ok());
  EXPECT_TRUE(WriteSector(e.get(), 5, v2_).ok());
  EXPECT_TRUE(test::ReadSector(e.get(), 3) == v3_);
  EXPECT_TRUE(test::ReadSector(e.get(), 5) == v2_);
  EXPECT_TRUE(test::ReadSector(e.get(), 20) == v3_);
  EXPECT_TRUE(test::ReadSector(e.get(), 6) == std::string(4096, '\0')) << "a refused write changed the sector";
  EXPECT_EQ(e->List(0, 64).size(), 2u);
  EXPECT_EQ(e->Flush().ToErrno(), EIO) << "still failing";

  FaultVfs::ClearFaults(set_.paths.db);
  ASSERT_TRUE(e->Flush().ok());
  EXPECT_EQ(e->GetHealth().store_error, "");
  s = WriteSector(e.get(), 6, v2_);
  ASSERT_TRUE(s.ok()) << "remaps work again once a commit succeeded: " << s.ToString();
  ASSERT_TRUE(e->Flush().ok());
  ASSERT_TRUE(e->Close().ok());
  e = Open();
  EXPECT_TRUE(e->GetHealth().was_clean);
  EXPECT_EQ(e->List(0, 64).size(), 3u);
  for (uint64_t sector : {5, 6}) EXPECT_TRUE(test::ReadSector(e.get(), sector) == v2_) << sector;
  for (uint64_t sector : {3, 20}) EXPECT_TRUE(test::ReadSector(e.get(), sector) == v3_) << sector;
}

TEST_F(StoreFailure, TheWriterRetriesEachCycleAndLogsOncePerChangeOfState) {
  LogCapture log;
  auto e = Open(/*interval=*/2ms);
  const uint64_t id = Fail(VfsFile::kWal, VfsOp::kWrite, SQLITE_IOERR_WRITE, VfsFault::kForever);
  ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 7).ok());  // a change to commit
  ASSERT_TRUE(Eventually([&] { return e->GetHealth().store_error != ""; }));
  // Retried every cycle, with no flush asking.
  ASSERT_TRUE(Eventually([&] { return FaultVfs::Fired(id) >= 5; }));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(e->Flush().ToErrno(), EIO);
  EXPECT_EQ(WriteSector(e.get(), 7, v1_).ToErrno(), EIO);
  EXPECT_EQ(log.Count("the metadata store cannot commit"), 1u) << log.All();

  FaultVfs::ClearFaults(set_.paths.db);
  ASSERT_TRUE(Eventually([&] { return e->GetHealth().store_error == ""; })) << "a successful commit clears it";
  EXPECT_EQ(log.Count("commits again"), 1u) << log.All();
  ASSERT_TRUE(WriteSector(e.get(), 7, v1_).ok());
  ASSERT_TRUE(e->Flush().ok());
  EXPECT_EQ(log.Count("the metadata store cannot commit"), 1u) << log.All();
  ASSERT_TRUE(e->Close().ok());
  e = Open();
  EXPECT_EQ(e->ListFaultRules().size(), 1u);
  EXPECT_TRUE(test::ReadSector(e.get(), 7) == v1_);
}

// The stopping cycle's commit fails, but the DB still takes the small
// write that records why: Close fails, the set stays unclean with
// last_error set, and the next open warns, checks, reports and clears it.
TEST_F(StoreFailure, StoppingCommitFailureMakesCloseFailAndTheNextOpenReportsIt) {
  auto e = Open();
  ASSERT_TRUE(WriteSector(e.get(), 3, v1_).ok());
  ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 4).ok());
  ASSERT_TRUE(WriteSector(e.get(), 4, v2_).ok());
  ASSERT_TRUE(e->Flush().ok());
  ASSERT_TRUE(WriteSector(e.get(), 3, v3_).ok());
  ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 9).ok());  // a change for the stopping cycle
  const uint64_t id = Fail(VfsFile::kWal, VfsOp::kWrite, SQLITE_FULL, /*count=*/1);
  Status s = e->Close();
  EXPECT_EQ(FaultVfs::Fired(id), 1u);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.ToErrno(), EIO) << s.ToString();
  e.reset();
  SetInfo info = ReadInfo(set_.paths.db);
  EXPECT_FALSE(info.clean);
  EXPECT_NE(info.last_error.find("cannot commit"), std::string::npos) << info.last_error;
  ASSERT_NO_FATAL_FAILURE(test::ExpectCheckClean(set_));

  {
    LogCapture log;
    e = Open();
    EXPECT_EQ(log.Count("could not commit its table at its stop"), 1u) << log.All();
  }
  Health h = e->GetHealth();
  EXPECT_FALSE(h.was_clean);
  EXPECT_EQ(h.previous_store_error, info.last_error);
  EXPECT_EQ(h.store_error, "") << "the store works in this run";
  EXPECT_TRUE(test::ReadSector(e.get(), 4) == v2_) << "flushed data was lost";
  EXPECT_TRUE(test::ReadSector(e.get(), 3) == v3_) << "Close synced MAIN before the commit failed";
  ASSERT_TRUE(e->Close().ok());
  info = ReadInfo(set_.paths.db);
  EXPECT_TRUE(info.clean);
  EXPECT_EQ(info.last_error, "") << "the report is cleared once an open checked the set";
}

// The DB takes no write at all: Close fails and the set simply stays
// unclean (last_error cannot be written); the next open checks it.
TEST_F(StoreFailure, CloseWithTheDbUnwritableLeavesTheSetUnclean) {
  auto e = Open();
  ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 4).ok());
  ASSERT_TRUE(WriteSector(e.get(), 4, v2_).ok());
  ASSERT_TRUE(e->Flush().ok());
  ASSERT_TRUE(e->Remap(8).ok());
  Fail(VfsFile::kAny, VfsOp::kWrite, SQLITE_IOERR_WRITE, VfsFault::kForever);
  Status s = e->Close();
  EXPECT_EQ(s.ToErrno(), EIO) << s.ToString();
  e.reset();
  FaultVfs::ClearFaults(set_.paths.db);
  SetInfo info = ReadInfo(set_.paths.db);
  EXPECT_FALSE(info.clean);
  EXPECT_EQ(info.last_error, "");
  ASSERT_NO_FATAL_FAILURE(test::ExpectCheckClean(set_));
  e = Open();
  EXPECT_FALSE(e->GetHealth().was_clean);
  EXPECT_TRUE(test::ReadSector(e.get(), 4) == v2_);
  ASSERT_TRUE(e->Close().ok());
}

// The commits work but the final checkpoint cannot write the DB file.
TEST_F(StoreFailure, CheckpointFailureAtCloseLeavesTheSetUnclean) {
  auto e = Open();
  ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 4).ok());
  ASSERT_TRUE(WriteSector(e.get(), 4, v2_).ok());
  ASSERT_TRUE(e->Flush().ok());
  const uint64_t id = Fail(VfsFile::kDb, VfsOp::kWrite, SQLITE_FULL, /*count=*/1);
  Status s = e->Close();
  EXPECT_EQ(FaultVfs::Fired(id), 1u);
  EXPECT_FALSE(s.ok());
  e.reset();
  SetInfo info = ReadInfo(set_.paths.db);
  EXPECT_FALSE(info.clean);
  EXPECT_NE(info.last_error, "");
  e = Open();
  EXPECT_FALSE(e->GetHealth().was_clean);
  EXPECT_NE(e->GetHealth().previous_store_error, "");
  EXPECT_TRUE(test::ReadSector(e.get(), 4) == v2_);
  ASSERT_TRUE(e->Close().ok());
  ASSERT_NO_FATAL_FAILURE(test::ExpectCheckClean(set_));
}

TEST_F(StoreFailure, OpenThatCannotWriteTheDbFailsCleanly) {
  {
    auto e = Open();
    ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 4).ok());
    ASSERT_TRUE(WriteSector(e.get(), 4, v2_).ok());
    ASSERT_TRUE(e->Close().ok());
  }
  for (const CommitFault& cf : kCommitFaults) {
    SCOPED_TRACE(cf.name);
    const uint64_t id = Fail(VfsFile::kWal, cf.op, cf.rc, VfsFault::kForever);
    std::unique_ptr<Engine> e;
    Status s = set_.Open(&e, VfsOptions());
    EXPECT_GE(FaultVfs::Fired(id), 1u);
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_EQ(e, nullptr);
    FaultVfs::ClearFaults(set_.paths.db);
    ASSERT_NO_FATAL_FAILURE(test::ExpectCheckClean(set_));
    // Nothing was left locked or half-open, and the set is as it was.
    e = Open();
    EXPECT_TRUE(e->GetHealth().was_clean);
    EXPECT_TRUE(test::ReadSector(e.get(), 4) == v2_);
    ASSERT_TRUE(e->Close().ok());
  }
}

// After a power cut the open's own I/O is SQLite's recovery: reading the
// WAL and DB and mapping the -shm index. When that fails, the open fails
// with an I/O error (never a false claim of corruption), changes nothing,
// and a later open works.
TEST_F(StoreFailure, RecoveryThatCannotReadTheDbFailsTheOpenWithAnIOError) {
  auto e = Open();
  ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 4).ok());
  ASSERT_TRUE(WriteSector(e.get(), 4, v2_).ok());
  ASSERT_TRUE(e->Flush().ok());
  CrashAndPowerCut(&e, &set_.env, set_.paths.db, /*seed=*/3, /*tear=*/true);
  struct RecoveryFault {
    VfsOp op;
    int rc;
    uint64_t skip;
  };
  for (const RecoveryFault& rf : {RecoveryFault{VfsOp::kRead, 0, 0}, RecoveryFault{VfsOp::kRead, 0, 5},
                                  RecoveryFault{VfsOp::kRead, 0, 12}, RecoveryFault{VfsOp::kShmMap, SQLITE_FULL, 0}}) {
    SCOPED_TRACE("op " + std::to_string(static_cast<int>(rf.op)) + " skip " + std::to_string(rf.skip));
    Fail(VfsFile::kAny, rf.op, rf.rc, VfsFault::kForever, rf.skip);
    Status s = set_.Open(&e, VfsOptions());
    FaultVfs::ClearFaults(set_.paths.db);
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    ASSERT_NO_FATAL_FAILURE(test::ExpectCheckClean(set_));
  }
  e = Open();
  EXPECT_FALSE(e->GetHealth().was_clean);
  EXPECT_TRUE(test::ReadSector(e.get(), 4) == v2_);
  ASSERT_TRUE(e->Close().ok());
}

}  // namespace
}  // namespace remapfs
