// FaultVfs: a SQLite VFS for tests, registered as "remapfs-faulty". It is a
// shim over the default "unix" VFS that
//   1. remembers, per file (DB, -wal, -journal), what was written or
//      truncated since the file's last successful xSync, so that a simulated
//      power cut can drop those changes, or tear them at 512-byte granularity
//      (seeded), by restoring the pre-images of the unsynced blocks (and the
//      synced size) in the real files;
//   2. fails chosen calls on demand: the next N xWrite / xSync / xTruncate
//      (or xRead / xShmMap) of a kind of file return SQLITE_IOERR_WRITE /
//      _FSYNC / _TRUNCATE (_READ / _SHMMAP) or SQLITE_FULL, as the unix VFS
//      does when the OS reports EIO or ENOSPC.
// Select it per DB: MetaStore::Open/Create(..., FaultVfs::Name()) or
// EngineOptions::sqlite_vfs.
//
// The disk it models: a write is atomic per 512-byte block and never changes
// bytes outside its range (SQLite's POWERSAFE_OVERWRITE); xSync is a barrier
// that makes every earlier write and truncation of that file durable;
// unsynced ones may be lost or torn by a power cut. A failed xSync (with
// VfsFault::lose_unsynced, the default) behaves like Linux after a writeback
// error: the file still reads as written, but the unsynced blocks never
// reach the disk, even through a later successful xSync, unless they are
// written again. Deletions and creations of files are durable at once. The
// -shm file is not tracked: SQLite rebuilds it from the WAL after a crash.
//
// A test-level crash is two steps:
//   Kill(db)      the process died: from now on the writes, truncations,
//                 syncs and deletions of the files under `db` do nothing (and
//                 report success), so closing the dead engine's connection
//                 (Engine::AbandonForTest) cannot checkpoint or delete the WAL
//                 as an orderly sqlite3_close would;
//   PowerCut(db)  the machine lost power: unsynced changes are dropped or
//                 torn, and the files work normally again. Revive(db)
//                 instead keeps them (a crash of the process alone).
// CrashAndPowerCut below does it all for an engine over a MemEnv: one power
// cut hits MAIN, SPARE and the DB with its WAL together, each file and each
// block independently.
//
// Thread-safety: everything is thread-safe. PowerCut requires that no
// connection has a file under its prefix open.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace remapfs {

class Engine;
class MemEnv;

enum class VfsFile : uint8_t { kDb, kWal, kJournal, kAny };
// kRead and kShmMap are the I/O of SQLite's recovery after a crash: reading
// the WAL and DB, and mapping the -shm index (which fails when the disk is
// full).
enum class VfsOp : uint8_t { kWrite, kSync, kTruncate, kRead, kShmMap };

struct VfsFault {
  static constexpr uint64_t kForever = UINT64_MAX;
  // Files whose path starts with this (a DB path also covers its -wal); "":
  // every file.
  std::string path_prefix;
  VfsFile file = VfsFile::kAny;
  VfsOp op = VfsOp::kWrite;
  // The SQLite result code of a failing call; 0: the natural I/O error of
  // the op (SQLITE_IOERR_WRITE, _FSYNC, _TRUNCATE, _READ, _SHMMAP).
  // SQLITE_FULL is disk full. A failing call changes nothing in the file.
  int rc = 0;
  uint64_t skip = 0;   // matching calls let through before the first failure
  uint64_t count = 1;  // matching calls failed after those; kForever: all
  // For kSync: the blocks the failed sync should have made durable are lost
  // (see above). false: they stay merely unsynced.
  bool lose_unsynced = true;
  // Instead of failing, the matching call is where the process dies: it
  // does Kill(path_prefix) and, like every later call, does nothing and
  // reports success. Puts a crash at an exact point inside a commit or a
  // checkpoint.
  bool kill = false;
};

// What a power cut did.
struct VfsCutStats {
  uint64_t files = 0;            // files with unsynced changes
  uint64_t blocks_reverted = 0;  // blocks given back their durable content
  uint64_t blocks_kept = 0;      // unsynced blocks that reached the disk (tear)
  uint64_t sizes_reverted = 0;   // files whose size went back to the synced one
};

class FaultVfs {
 public:
  // Registers the VFS on first use (never as the default) and returns its
  // name, "remapfs-faulty".
  static const char* Name();

  // Arms a fault; returns its id.
  static uint64_t Inject(const VfsFault& fault);
  // How many calls the fault failed so far (also after ClearFaults).
  static uint64_t Fired(uint64_t id);
  // Disarms the faults whose path_prefix starts with `path_prefix`.
  static void ClearFaults(const std::string& path_prefix = "");

  static void Kill(const std::string& path_prefix);
  static void Revive(const std::string& path_prefix);
  static VfsCutStats PowerCut(const std::string& path_prefix, uint64_t seed, bool tear);

  // Blocks of the files under the prefix written since their last sync
  // (lost ones included).
  static uint64_t UnsyncedBlocks(const std::string& path_prefix);
  // Of those, the blocks a failed sync lost. While there are any, a process
  // that restarts without a power cut reads pages from the cache that will
  // never reach the disk (Linux after a writeback error, "fsyncgate"): no
  // SQLite user survives a later power cut then, so a test should cut power
  // rather than merely restart while this is non-zero.
  static uint64_t LostBlocks(const std::string& path_prefix);
};

// A power cut of the whole machine: MemEnv::PowerCut on `env` (MAIN, SPARE)
// and FaultVfs::PowerCut on the DB and its WAL.
VfsCutStats PowerCutAll(MemEnv* env, const std::string& db_path, uint64_t seed, bool tear);

// `kill -9` of the daemon, then a power cut: Kill, Engine::AbandonForTest,
// the engine destroyed, PowerCutAll. The engine's DB must be opened through
// FaultVfs.
VfsCutStats CrashAndPowerCut(std::unique_ptr<Engine>* engine, MemEnv* env, const std::string& db_path, uint64_t seed,
                             bool tear);

}  // namespace remapfs
