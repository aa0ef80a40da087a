// The engine when the host, not the medium, fails, and when SPARE or MAIN is
// reached in blocks bigger than a sector:
// - a failed data sync is remembered (Linux reports a writeback error once
//   and drops the pages): no later flush succeeds, nothing more is
//   committed, and a restart goes on from the last commit;
// - only media errors change a sector or a slot: ENOSPC, EDQUOT, EROFS and
//   ENOMEM fail the request and leave the set as it was;
// - concurrent sub-block writes of O_DIRECT images never undo each other.
// Host failures come from MemEnv::InjectError (the kernel's behaviour),
// media errors from fault rules; the last tests use real files.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "tests/support/testharness.h"

namespace remapfs {
namespace {

using test::MemSet;
using test::Pattern;
using test::ReadSector;

EngineOptions NoTimer() {
  EngineOptions o;
  o.commit_interval = std::chrono::hours(1);
  return o;
}

void WriteSectorOk(Engine* e, uint64_t sector, const std::string& data) {
  Status s = e->Write(sector * e->sector_size(), data.size(), data.data());
  ASSERT_TRUE(s.ok()) << "sector " << sector << ": " << s.ToString();
}

// ------------------------------------------------------- a failed data sync

// The "fsyncgate" sequence: a write lands in a slot, SPARE's writeback fails,
// the device recovers. Before, the next flush said OK although the page was
// dropped, and the sector read back stale slot bytes after the cache went.
TEST(EngineSyncFailure, NoFlushIsAcknowledgedAfterAFailedSync) {
  MemSet set;
  auto e = set.OpenOrDie(NoTimer());
  ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 5).ok());
  const std::string v1 = Pattern(512, 1), v2 = Pattern(512, 2);
  WriteSectorOk(e.get(), 5, v1);  // remapped to a slot
  ASSERT_TRUE(e->Flush().ok());

  WriteSectorOk(e.get(), 5, v2);  // into the slot, in the page cache
  set.env.InjectError(set.paths.spare, MemEnv::Op::kSync, EIO);
  Status s = e->Flush();
  EXPECT_EQ(s.ToErrno(), EIO) << s.ToString();
  // The device is fine again: its next fdatasync would return 0.
  for (int i = 0; i < 3; ++i) {
    s = e->Flush();
    EXPECT_FALSE(s.ok()) << "a flush was acknowledged after SPARE lost a write";
  }
  const Health h = e->GetHealth();
  EXPECT_EQ(h.State(), "sync-failed");
  EXPECT_NE(h.sync_error.find("fdatasync"), std::string::npos) << h.sync_error;

  // The documented way back: stop (the set stays unclean) and open again.
  EXPECT_FALSE(e->Close().ok());
  e.reset();
  set.env.DropCaches();
  e = set.OpenOrDie(NoTimer());
  const Health after = e->GetHealth();
  EXPECT_FALSE(after.was_clean);
  EXPECT_NE(after.previous_store_error.find("fdatasync"), std::string::npos) << after.previous_store_error;
  EXPECT_EQ(after.State(), "degraded");
  // v2 was never acknowledged; v1 was, and the mapping to it holds.
  const std::string got = ReadSector(e.get(), 5);
  EXPECT_TRUE(got == v1 || got == v2);
  WriteSectorOk(e.get(), 5, v2);
  EXPECT_TRUE(e->Flush().ok()) << "the restarted set syncs and commits again";
}

// A remap queued before the failed sync points to a slot whose data may be
// gone: it is never committed, and after the restart the sector is served
// as the last commit says.
TEST(EngineSyncFailure, RemapsQueuedBeforeTheFailureAreNotCommitted) {
  MemSet set;
  auto e = set.OpenOrDie(NoTimer());
  ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 7).ok());
  ASSERT_TRUE(e->Flush().ok());
  WriteSectorOk(e.get(), 7, Pattern(512, 3));  // remapped, not committed
  ASSERT_EQ(e->List(7, 8).size(), 1u);
  set.env.InjectError(set.paths.spare, MemEnv::Op::kSync, EIO);
  EXPECT_FALSE(e->Flush().ok());
  EXPECT_FALSE(e->Flush().ok());
  EXPECT_FALSE(e->Close().ok());
  e.reset();
  e = set.OpenOrDie(NoTimer());
  EXPECT_TRUE(e->List(0, e->sector_count()).empty()) << "a mapping to possibly lost data was committed";
  e.reset();
  test::ExpectCheckClean(set);
}

TEST(EngineSyncFailure, AFailedSyncOfMainIsRememberedToo) {
  MemSet set;
  auto e = set.OpenOrDie(NoTimer());
  WriteSectorOk(e.get(), 3, Pattern(512, 4));
  set.env.InjectError(set.paths.main, MemEnv::Op::kSync, EIO);
  EXPECT_FALSE(e->Flush().ok());
  EXPECT_FALSE(e->Flush().ok());
  EXPECT_EQ(e->GetHealth().State(), "sync-failed");
}

// ------------------------------------------------------ host errors

struct HostErrorCase {
  const char* name;
  int err;
};

class EngineHostError : public ::testing::TestWithParam<HostErrorCase> {};

// SPARE's filesystem is full (a sparse spare), over quota or read-only: the
// write that needs a slot fails with that error, and no slot turns bad.
// Before, one such write marked every slot of the spare bad.
TEST_P(EngineHostError, SpareWriteErrorChangesNoSlotAndPassesOnce) {
  MemSet set;
  auto e = set.OpenOrDie(NoTimer());
  ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 0, 64).ok());
  set.env.InjectError(set.paths.spare, MemEnv::Op::kWrite, GetParam().err);
  const std::string data = Pattern(4096, 5);
  Status s = e->Write(0, data.size(), data.data());
  EXPECT_EQ(s.ToErrno(), GetParam().err) << s.ToString();
  Health h = e->GetHealth();
  EXPECT_EQ(h.slots_bad, 0u);
  EXPECT_EQ(h.slots_free, h.slots_total);
  EXPECT_EQ(h.remapped_sectors, 0u);
  EXPECT_EQ(h.pending_sectors, 0u);
  EXPECT_EQ(h.State(), "ok");

  set.env.InjectError(set.paths.spare, MemEnv::Op::kWrite, 0);  // space again
  ASSERT_TRUE(e->Write(0, data.size(), data.data()).ok());
  EXPECT_EQ(e->GetHealth().remapped_sectors, 8u);
  std::string back(data.size(), '\0');
  ASSERT_TRUE(e->Read(0, back.size(), back.data()).ok());
  EXPECT_EQ(back, data);
}

// A write to a slot already in use that fails for the host's reason keeps the
// slot: it is not bad.
TEST_P(EngineHostError, RemappedSectorWriteErrorKeepsItsSlot) {
  MemSet set;
  auto e = set.OpenOrDie(NoTimer());
  ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 9).ok());
  const std::string v1 = Pattern(512, 6);
  WriteSectorOk(e.get(), 9, v1);
  const auto before = e->List(9, 10);
  set.env.InjectError(set.paths.spare, MemEnv::Op::kWrite, GetParam().err);
  const std::string v2 = Pattern(512, 7);
  EXPECT_EQ(e->Write(9 * 512, 512, v2.data()).ToErrno(), GetParam().err);
  EXPECT_EQ(e->Write(9 * 512 + 100, 17, v2.data()).ToErrno(), GetParam().err) << "partial";
  EXPECT_EQ(e->GetHealth().slots_bad, 0u);
  ASSERT_EQ(e->List(9, 10).size(), 1u);
  EXPECT_EQ(e->List(9, 10)[0].slot, before[0].slot);
  set.env.InjectError(set.paths.spare, MemEnv::Op::kWrite, 0);
  EXPECT_EQ(ReadSector(e.get(), 9), v1);
}

// MAIN's own host fails a write: the error goes to the caller, nothing is
// remapped.
TEST_P(EngineHostError, MainWriteErrorIsReturnedNotRemapped) {
  MemSet set;
  auto e = set.OpenOrDie(NoTimer());
  set.env.InjectError(set.paths.main, MemEnv::Op::kWrite, GetParam().err);
  const std::string data = Pattern(1024, 8);
  EXPECT_EQ(e->Write(512 * 20, data.size(), data.data()).ToErrno(), GetParam().err);
  EXPECT_EQ(e->GetHealth().remapped_sectors, 0u);
  EXPECT_EQ(e->GetHealth().slots_free, e->GetHealth().slots_total);
}

INSTANTIATE_TEST_SUITE_P(Errors, EngineHostError,
                         ::testing::Values(HostErrorCase{"ENOSPC", ENOSPC}, HostErrorCase{"EDQUOT", EDQUOT},
                                           HostErrorCase{"EROFS", EROFS}, HostErrorCase{"ENOMEM", ENOMEM}),
                         [](const auto& p) { return std::string(p.param.name); });

// A read of MAIN that fails for lack of memory (a bounce buffer) is not a bad
// sector: no sector becomes pending, and the next read works.
TEST(EngineHostErrorRead, MainReadOutOfMemoryMakesNothingPending) {
  MemSet set;
  auto e = set.OpenOrDie(NoTimer());
  const std::string data = Pattern(512, 9);
  WriteSectorOk(e.get(), 4, data);
  set.env.InjectError(set.paths.main, MemEnv::Op::kRead, ENOMEM);
  std::string out(512, '\0');
  EXPECT_EQ(e->Read(4 * 512, 512, out.data()).ToErrno(), ENOMEM);
  EXPECT_EQ(e->Remap(4).ToErrno(), ENOMEM);
  // A partial write to a pending-free sector that needs a remap reads MAIN too.
  ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 4).ok());
  EXPECT_EQ(e->Write(4 * 512 + 10, 10, data.data()).ToErrno(), ENOMEM);
  EXPECT_EQ(e->GetHealth().pending_sectors, 0u);
  EXPECT_EQ(e->GetHealth().remapped_sectors, 0u);
  set.env.InjectError(set.paths.main, MemEnv::Op::kRead, 0);
  EXPECT_EQ(ReadSector(e.get(), 4), data);
}

// A media error still does what it always did.
TEST(EngineHostErrorRead, MediaErrorsStillChangeState) {
  for (int err : {EIO, ENODATA, EILSEQ, EREMOTEIO, EBADMSG}) {
    EXPECT_TRUE(Status::FromErrno("pread", err).IsMediaError()) << err;
  }
  for (int err : {ENOSPC, EDQUOT, EROFS, ENOMEM, EFBIG, EACCES, EPERM, ETIMEDOUT, ENOLINK}) {
    EXPECT_FALSE(Status::FromErrno("pwrite", err).IsMediaError()) << err;
  }
}

// ------------------------------------------------- sub-block writes, real files

// 512-byte sectors on images opened O_DIRECT with 4 KiB blocks: a slot write
// is a read-modify-write of its block, and the 8 slots of one block belong to
// sectors of 8 different 1 MiB regions, so 8 writers run at once. Each
// verifies its write right after it; before, some writes were undone.
TEST(EngineSubBlock, ConcurrentWritesToSlotsSharingABlockAreNeverLost) {
  test::TempDir dir;
  const SetPaths paths{dir.File("main.img"), dir.File("spare.img"), dir.File("set.db")};
  constexpr uint64_t kRegion = 1 << 20;
  constexpr int kWriters = 8;
  {
    const int fd = ::open(paths.main.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, kWriters * kRegion), 0);
    ::close(fd);
  }
  ASSERT_TRUE(CreateSet(Env::Default(), paths, {512, kSpareHeaderSize + 64 * 512}).ok());
  EngineOptions options = NoTimer();
  options.direct_io = true;
  std::unique_ptr<Engine> e;
  ASSERT_TRUE(Engine::Open(paths, options, &e).ok());
  const uint64_t sectors_per_region = kRegion / 512;
  for (int w = 0; w < kWriters; ++w) ASSERT_TRUE(e->Remap(w * sectors_per_region).ok());
  for (int w = 0; w < kWriters; ++w) ASSERT_EQ(e->List(w * sectors_per_region, w * sectors_per_region + 1)[0].slot, uint32_t(w));

  std::atomic<int> lost{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      const uint64_t offset = w * kRegion;
      std::string back(512, '\0');
      for (int i = 0; i < 400; ++i) {
        const std::string data = Pattern(512, w * 100000 + i);
        if (!e->Write(offset, 512, data.data()).ok() || !e->Read(offset, 512, back.data()).ok() || back != data) {
          ++lost;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(lost.load(), 0) << "a concurrent read-modify-write undid another sector's write";
  ASSERT_TRUE(e->Close().ok());
}

}  // namespace
}  // namespace remapfs
