// FaultVfs: the power-cut model (unsynced writes and truncations dropped or
// torn per 512-byte block, failed syncs losing their blocks), the injected
// errors, the killed process, and that SQLite over it keeps exactly what it
// synced.
#include "tests/support/fault_vfs.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/support/testutil.h"

namespace remapfs {
namespace {

constexpr size_t kBlock = 512;

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A file opened through the VFS directly, as SQLite would.
class RawFile {
 public:
  RawFile(std::string path, int kind = SQLITE_OPEN_MAIN_DB) : path_(std::move(path)) {
    vfs_ = sqlite3_vfs_find(FaultVfs::Name());
    mem_.assign(static_cast<size_t>(vfs_->szOsFile) / 8 + 1, 0);
    f_ = reinterpret_cast<sqlite3_file*>(mem_.data());
    int out = 0;
    rc_ = vfs_->xOpen(vfs_, path_.c_str(), f_, kind | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &out);
  }
  ~RawFile() { Close(); }
  void Close() {
    if (f_->pMethods) f_->pMethods->xClose(f_);
    f_->pMethods = nullptr;
  }
  int open_rc() const { return rc_; }
  int Write(uint64_t off, const std::string& data) {
    return f_->pMethods->xWrite(f_, data.data(), static_cast<int>(data.size()), static_cast<sqlite3_int64>(off));
  }
  int Sync() { return f_->pMethods->xSync(f_, SQLITE_SYNC_NORMAL); }
  int Truncate(uint64_t size) { return f_->pMethods->xTruncate(f_, static_cast<sqlite3_int64>(size)); }

 private:
  std::string path_;
  sqlite3_vfs* vfs_;
  std::vector<uint64_t> mem_;
  sqlite3_file* f_;
  int rc_;
};

TEST(FaultVfs, UnsyncedWritesAreDroppedSyncedOnesKept) {
  test::TempDir dir;
  const std::string path = dir.File("a.db");
  const std::string a = test::Pattern(4 * kBlock, 1), b = test::Pattern(3 * kBlock + 100, 2);
  {
    RawFile f(path);
    ASSERT_EQ(f.open_rc(), SQLITE_OK);
    ASSERT_EQ(f.Write(0, a), SQLITE_OK);
    ASSERT_EQ(f.Sync(), SQLITE_OK);
    ASSERT_EQ(f.Write(kBlock + 7, b), SQLITE_OK);  // inside, then past the synced end
    EXPECT_EQ(FaultVfs::UnsyncedBlocks(path), 4u);
  }
  ASSERT_EQ(FileBytes(path).size(), kBlock + 7 + b.size());
  VfsCutStats st = FaultVfs::PowerCut(path, 1, /*tear=*/false);
  EXPECT_EQ(st.files, 1u);
  EXPECT_EQ(st.sizes_reverted, 1u);
  EXPECT_TRUE(FileBytes(path) == a) << "the power cut did not restore the synced content";
  EXPECT_EQ(FaultVfs::UnsyncedBlocks(path), 0u);
}

TEST(FaultVfs, TearKeepsEachUnsyncedBlockOldOrNew) {
  test::TempDir dir;
  const std::string path = dir.File("a.db");
  const std::string old_bytes = test::Pattern(64 * kBlock, 1), new_bytes = test::Pattern(64 * kBlock, 2);
  {
    RawFile f(path);
    ASSERT_EQ(f.Write(0, old_bytes), SQLITE_OK);
    ASSERT_EQ(f.Sync(), SQLITE_OK);
    // Unaligned: the first and last blocks are only partly new.
    ASSERT_EQ(f.Write(100, new_bytes.substr(100, 63 * kBlock)), SQLITE_OK);
  }
  std::string expect_new = old_bytes;
  expect_new.replace(100, 63 * kBlock, new_bytes.substr(100, 63 * kBlock));
  VfsCutStats st = FaultVfs::PowerCut(path, 42, /*tear=*/true);
  EXPECT_GT(st.blocks_kept, 0u);
  EXPECT_GT(st.blocks_reverted, 0u);
  EXPECT_EQ(st.blocks_kept + st.blocks_reverted, 64u);
  const std::string got = FileBytes(path);
  ASSERT_EQ(got.size(), old_bytes.size());
  size_t kept = 0;
  for (size_t i = 0; i < 64; ++i) {
    const std::string blk = got.substr(i * kBlock, kBlock);
    const bool is_old = blk == old_bytes.substr(i * kBlock, kBlock);
    const bool is_new = blk == expect_new.substr(i * kBlock, kBlock);
    EXPECT_TRUE(is_old || is_new) << "block " << i << " is neither its old nor its new content";
    kept += is_new && !is_old;
  }
  EXPECT_EQ(kept, st.blocks_kept);
}

TEST(FaultVfs, UnsyncedTruncationIsUndone) {
  test::TempDir dir;
  const std::string path = dir.File("a.db-wal");
  const std::string a = test::Pattern(8 * kBlock, 3);
  RawFile db(dir.File("a.db"));  // the unix VFS opens a WAL only beside its DB
  {
    RawFile f(path, SQLITE_OPEN_WAL);
    ASSERT_EQ(f.open_rc(), SQLITE_OK);
    ASSERT_EQ(f.Write(0, a), SQLITE_OK);
    ASSERT_EQ(f.Sync(), SQLITE_OK);
    ASSERT_EQ(f.Truncate(700), SQLITE_OK);
    ASSERT_EQ(f.Write(600, std::string(300, 'x')), SQLITE_OK);
  }
  ASSERT_EQ(FileBytes(path).size(), 900u);
  FaultVfs::PowerCut(path, 1, /*tear=*/false);
  EXPECT_TRUE(FileBytes(path) == a);
  {
    RawFile f(path, SQLITE_OPEN_WAL);
    ASSERT_EQ(f.Truncate(0), SQLITE_OK);
    ASSERT_EQ(f.Sync(), SQLITE_OK);
  }
  FaultVfs::PowerCut(path, 1, /*tear=*/false);
  EXPECT_EQ(FileBytes(path).size(), 0u) << "a synced truncation was undone";
}

TEST(FaultVfs, FailedSyncLosesItsBlocksUnlessWrittenAgain) {
  test::TempDir dir;
  const std::string path = dir.File("a.db");
  const std::string a = test::Pattern(4 * kBlock, 1), b = test::Pattern(4 * kBlock, 2);
  {
    RawFile f(path);
    ASSERT_EQ(f.Write(0, a), SQLITE_OK);
    ASSERT_EQ(f.Sync(), SQLITE_OK);
    ASSERT_EQ(f.Write(0, b), SQLITE_OK);
    const uint64_t id = FaultVfs::Inject({.path_prefix = path, .op = VfsOp::kSync});
    EXPECT_EQ(f.Sync(), SQLITE_IOERR_FSYNC);
    EXPECT_EQ(FaultVfs::Fired(id), 1u);
    EXPECT_TRUE(FileBytes(path) == b) << "the file reads as written, as the page cache would";
    // Block 3 is written again after the failure: that copy is synced.
    ASSERT_EQ(f.Write(3 * kBlock, b.substr(3 * kBlock)), SQLITE_OK);
    ASSERT_EQ(f.Sync(), SQLITE_OK);
    EXPECT_EQ(FaultVfs::UnsyncedBlocks(path), 3u);
  }
  FaultVfs::PowerCut(path, 1, /*tear=*/true);  // lost blocks are lost even when tearing
  EXPECT_TRUE(FileBytes(path) == a.substr(0, 3 * kBlock) + b.substr(3 * kBlock));
}

TEST(FaultVfs, InjectedFaultsFailTheChosenCallsOfTheChosenFiles) {
  test::TempDir dir;
  const std::string db = dir.File("a.db");
  RawFile f(db), wal(db + "-wal", SQLITE_OPEN_WAL);
  const std::string x(kBlock, 'x');
  const uint64_t id = FaultVfs::Inject(
      {.path_prefix = db, .file = VfsFile::kWal, .op = VfsOp::kWrite, .rc = SQLITE_FULL, .skip = 1, .count = 2});
  EXPECT_EQ(f.Write(0, x), SQLITE_OK) << "a WAL fault hit the DB file";
  EXPECT_EQ(wal.Write(0, x), SQLITE_OK) << "skip=1 lets the first call through";
  EXPECT_EQ(wal.Write(kBlock, x), SQLITE_FULL);
  EXPECT_EQ(wal.Write(kBlock, x), SQLITE_FULL);
  EXPECT_EQ(wal.Write(kBlock, x), SQLITE_OK) << "count=2 fails two calls";
  EXPECT_EQ(wal.Sync(), SQLITE_OK);
  EXPECT_EQ(FaultVfs::Fired(id), 2u);
  EXPECT_EQ(FileBytes(db + "-wal").size(), 2 * kBlock);

  const uint64_t t = FaultVfs::Inject({.path_prefix = db, .op = VfsOp::kTruncate, .count = VfsFault::kForever});
  EXPECT_EQ(f.Truncate(0), SQLITE_IOERR_TRUNCATE);
  EXPECT_EQ(wal.Truncate(0), SQLITE_IOERR_TRUNCATE);
  EXPECT_EQ(FileBytes(db).size(), kBlock) << "a failed truncation changed the file";
  FaultVfs::ClearFaults(db);
  EXPECT_EQ(f.Truncate(0), SQLITE_OK);
  EXPECT_EQ(FaultVfs::Fired(t), 2u);
}

TEST(FaultVfs, AKilledProcessChangesNothing) {
  test::TempDir dir;
  const std::string db = dir.File("a.db");
  const std::string a = test::Pattern(2 * kBlock, 1);
  {
    RawFile f(db);
    ASSERT_EQ(f.Write(0, a), SQLITE_OK);
    ASSERT_EQ(f.Sync(), SQLITE_OK);
    FaultVfs::Kill(db);
    EXPECT_EQ(f.Write(0, std::string(kBlock, 'z')), SQLITE_OK);
    EXPECT_EQ(f.Truncate(0), SQLITE_OK);
    EXPECT_EQ(f.Sync(), SQLITE_OK);
  }
  sqlite3_vfs* vfs = sqlite3_vfs_find(FaultVfs::Name());
  EXPECT_EQ(vfs->xDelete(vfs, db.c_str(), 0), SQLITE_OK);
  EXPECT_TRUE(FileBytes(db) == a) << "a killed process still changed its file";
  FaultVfs::Revive(db);
  {
    RawFile f(db);
    EXPECT_EQ(f.Truncate(kBlock), SQLITE_OK);
  }
  EXPECT_EQ(FileBytes(db).size(), kBlock);
}

TEST(FaultVfs, AKillFaultIsWhereTheProcessDies) {
  test::TempDir dir;
  const std::string db = dir.File("a.db");
  const std::string a(kBlock, 'a'), b(kBlock, 'b');
  {
    RawFile f(db);
    const uint64_t id = FaultVfs::Inject({.path_prefix = db, .op = VfsOp::kWrite, .skip = 1, .kill = true});
    EXPECT_EQ(f.Write(0, a), SQLITE_OK);
    EXPECT_EQ(f.Write(kBlock, b), SQLITE_OK) << "a dead process's calls report success";
    EXPECT_EQ(f.Write(2 * kBlock, b), SQLITE_OK);
    EXPECT_EQ(f.Sync(), SQLITE_OK);
    EXPECT_EQ(FaultVfs::Fired(id), 1u);
    EXPECT_TRUE(FileBytes(db) == a) << "writes from the death on must not reach the file";
  }
  FaultVfs::ClearFaults(db);
  FaultVfs::PowerCut(db, 1, /*tear=*/false);
  EXPECT_EQ(FileBytes(db).size(), 0u) << "the write before the death was never synced";
}

// --- SQLite over the VFS ---

class Db {
 public:
  explicit Db(const std::string& path) {
    rc_ = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, FaultVfs::Name());
    sqlite3_extended_result_codes(db_, 1);
  }
  ~Db() { sqlite3_close_v2(db_); }
  int open_rc() const { return rc_; }
  int Exec(const std::string& sql) { return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr); }
  int64_t Int(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
      v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    std::string v;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
      v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
  int rc_;
};

// synchronous=FULL commits survive a crash (also torn); with
// synchronous=OFF nothing after the last sync does, and the DB is still
// consistent: the VFS models durability as SQLite expects it.
TEST(FaultVfs, SqliteKeepsExactlyWhatItSynced) {
  for (bool tear : {false, true}) {
    SCOPED_TRACE(tear ? "tear" : "drop");
    test::TempDir dir;
    const std::string db = dir.File("t.db");
    {
      Db d(db);
      ASSERT_EQ(d.open_rc(), SQLITE_OK);
      ASSERT_EQ(d.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t(x)"), SQLITE_OK);
      for (int i = 0; i < 20; ++i) ASSERT_EQ(d.Exec("INSERT INTO t VALUES (randomblob(700))"), SQLITE_OK);
      ASSERT_EQ(d.Exec("PRAGMA synchronous=OFF"), SQLITE_OK);
      for (int i = 0; i < 20; ++i) ASSERT_EQ(d.Exec("INSERT INTO t VALUES (randomblob(700))"), SQLITE_OK);
      EXPECT_GT(FaultVfs::UnsyncedBlocks(db), 0u);
      FaultVfs::Kill(db);  // the close below must not checkpoint
    }
    const VfsCutStats st = FaultVfs::PowerCut(db, 7, tear);
    EXPECT_GT(st.blocks_reverted, 0u);
    Db d(db);
    ASSERT_EQ(d.open_rc(), SQLITE_OK);
    EXPECT_EQ(d.Text("PRAGMA integrity_check"), "ok");
    if (tear) {
      const int64_t n = d.Int("SELECT count(*) FROM t");
      EXPECT_TRUE(n >= 20 && n <= 40) << n;
    } else {
      EXPECT_EQ(d.Int("SELECT count(*) FROM t"), 20);
    }
  }
}

TEST(FaultVfs, SqliteSeesTheInjectedErrors) {
  test::TempDir dir;
  const std::string db = dir.File("t.db");
  Db d(db);
  ASSERT_EQ(d.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t(x)"), SQLITE_OK);
  FaultVfs::Inject({.path_prefix = db, .file = VfsFile::kWal, .op = VfsOp::kWrite, .rc = SQLITE_FULL});
  EXPECT_EQ(d.Exec("INSERT INTO t VALUES (1)"), SQLITE_FULL);
  FaultVfs::Inject({.path_prefix = db, .file = VfsFile::kWal, .op = VfsOp::kSync});
  EXPECT_EQ(d.Exec("INSERT INTO t VALUES (2)"), SQLITE_IOERR_FSYNC);
  EXPECT_EQ(d.Exec("INSERT INTO t VALUES (3)"), SQLITE_OK);
  EXPECT_EQ(d.Int("SELECT group_concat(x) FROM t"), 3);
  EXPECT_EQ(d.Text("PRAGMA integrity_check"), "ok");
  // Reads, and the -shm mapping of a new connection's recovery.
  Db reader(db);  // a fresh connection has nothing cached
  FaultVfs::Inject({.path_prefix = db, .op = VfsOp::kRead, .count = VfsFault::kForever});
  EXPECT_EQ(reader.Exec("SELECT * FROM t"), SQLITE_IOERR_READ);
  FaultVfs::ClearFaults(db);
  FaultVfs::Inject({.path_prefix = db, .op = VfsOp::kShmMap, .rc = SQLITE_FULL, .count = VfsFault::kForever});
  Db other(db);
  EXPECT_EQ(other.Int("SELECT count(*) FROM t"), -1) << "a query worked without the -shm index";
  FaultVfs::ClearFaults(db);
  EXPECT_EQ(other.Int("SELECT count(*) FROM t"), 1);
}

}  // namespace
}  // namespace remapfs
