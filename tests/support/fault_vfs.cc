#include "tests/support/fault_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string_view>
#include <vector>

#include "store/engine.h"
#include "store/mutex.h"
#include "tests/support/mem_env.h"

namespace remapfs {

namespace {

constexpr int64_t kBlock = 512;

// What the VFS knows of one file (by path). Invariant: a block of the real
// file that is in neither `dirty` nor `lost` holds its durable content, up
// to durable_size.
struct FileState {
  std::string path;
  bool initialized = false;  // durable_size and the maps describe the file
  dev_t dev = 0;
  ino_t ino = 0;
  int64_t durable_size = 0;
  // Block -> its durable content (shorter than a block, or empty, where the
  // durable file ends inside or before it). Written since the last sync.
  std::map<int64_t, std::string> dirty;
  // The same, for blocks a failed sync lost: the cache holds what was
  // written, the disk the pre-image, until the block is written again.
  std::map<int64_t, std::string> lost;
  int handles = 0;
};

struct Fault {
  uint64_t id;
  VfsFault spec;
  uint64_t seen = 0;
};

// What the FileStates hold is guarded by mu too.
struct Registry {
  Mutex mu;
  std::map<std::string, std::unique_ptr<FileState>> files GUARDED_BY(mu);
  std::vector<Fault> faults GUARDED_BY(mu);
  std::map<uint64_t, uint64_t> fired GUARDED_BY(mu);  // id -> calls failed
  std::vector<std::string> dead GUARDED_BY(mu);       // prefixes of killed files
  uint64_t next_id GUARDED_BY(mu) = 1;
};

Registry& Reg() {
  static Registry* r = new Registry;  // never destroyed: SQLite may outlive statics
  return *r;
}

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

sqlite3_vfs* g_real = nullptr;
sqlite3_vfs g_vfs;
sqlite3_io_methods g_methods;

struct FaultFile {
  sqlite3_file base;  // first: SQLite sees a FaultFile as a sqlite3_file
  FileState* state;   // nullptr: not tracked (temporary files)
  VfsFile kind;
  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};
static_assert(sizeof(FaultFile) % 8 == 0);

FaultFile* Cast(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f); }

bool IsDead(const std::string& path) REQUIRES(Reg().mu) {
  for (const std::string& p : Reg().dead) {
    if (StartsWith(path, p)) return true;
  }
  return false;
}

int DefaultRc(VfsOp op) {
  switch (op) {
    case VfsOp::kWrite:
      return SQLITE_IOERR_WRITE;
    case VfsOp::kSync:
      return SQLITE_IOERR_FSYNC;
    case VfsOp::kTruncate:
      return SQLITE_IOERR_TRUNCATE;
    case VfsOp::kRead:
      return SQLITE_IOERR_READ;
    case VfsOp::kShmMap:
      return SQLITE_IOERR_SHMMAP;
  }
  return SQLITE_IOERR;
}

// The fault that fails this call, if any.
const VfsFault* FaultFor(FaultFile* f, VfsOp op) REQUIRES(Reg().mu) {
  for (Fault& x : Reg().faults) {
    const VfsFault& s = x.spec;
    if (s.op != op || (s.file != VfsFile::kAny && s.file != f->kind)) continue;
    if (!StartsWith(f->state->path, s.path_prefix)) continue;
    const uint64_t n = x.seen++;
    if (n < s.skip || n - s.skip >= s.count) continue;
    ++Reg().fired[x.id];
    if (s.kill) Reg().dead.push_back(s.path_prefix);
    return &x.spec;
  }
  return nullptr;
}

// What a call hit by `fault` returns.
int ResultOf(const VfsFault& fault, VfsOp op) {
  if (fault.kill) return SQLITE_OK;  // the process is dead: nothing happens
  return fault.rc ? fault.rc : DefaultRc(op);
}

// Remembers block b's durable content before it changes.
void Capture(FaultFile* f, int64_t b) REQUIRES(Reg().mu) {
  FileState& s = *f->state;
  if (s.dirty.count(b)) return;
  if (auto it = s.lost.find(b); it != s.lost.end()) {
    s.dirty.emplace(b, std::move(it->second));
    s.lost.erase(it);
    return;
  }
  std::string pre;
  const int64_t off = b * kBlock;
  if (off < s.durable_size) {
    pre.assign(static_cast<size_t>(std::min(kBlock, s.durable_size - off)), '\0');
    // By the invariant the block is still in the file; a short read would
    // zero-fill, which is what a hole holds.
    f->real()->pMethods->xRead(f->real(), pre.data(), static_cast<int>(pre.size()), off);
  }
  s.dirty.emplace(b, std::move(pre));
}

// --- io methods ---

int Close(sqlite3_file* file) {
  FaultFile* f = Cast(file);
  int rc = f->real()->pMethods ? f->real()->pMethods->xClose(f->real()) : SQLITE_OK;
  if (f->state) {
    MutexLock lock(&Reg().mu);
    --f->state->handles;
  }
  return rc;
}

int Read(sqlite3_file* file, void* buf, int amt, sqlite3_int64 off) {
  FaultFile* f = Cast(file);
  if (f->state) {
    MutexLock lock(&Reg().mu);
    if (!IsDead(f->state->path)) {
      if (const VfsFault* fault = FaultFor(f, VfsOp::kRead); fault && !fault->kill) {
        return ResultOf(*fault, VfsOp::kRead);
      }
    }
  }
  return f->real()->pMethods->xRead(f->real(), buf, amt, off);
}

int Write(sqlite3_file* file, const void* buf, int amt, sqlite3_int64 off) {
  FaultFile* f = Cast(file);
  if (!f->state) return f->real()->pMethods->xWrite(f->real(), buf, amt, off);
  MutexLock lock(&Reg().mu);
  if (IsDead(f->state->path)) return SQLITE_OK;
  if (const VfsFault* fault = FaultFor(f, VfsOp::kWrite)) return ResultOf(*fault, VfsOp::kWrite);
  for (int64_t b = off / kBlock; b * kBlock < off + amt; ++b) Capture(f, b);
  return f->real()->pMethods->xWrite(f->real(), buf, amt, off);
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  FaultFile* f = Cast(file);
  if (!f->state) return f->real()->pMethods->xTruncate(f->real(), size);
  MutexLock lock(&Reg().mu);
  if (IsDead(f->state->path)) return SQLITE_OK;
  if (const VfsFault* fault = FaultFor(f, VfsOp::kTruncate)) return ResultOf(*fault, VfsOp::kTruncate);
  sqlite3_int64 cur = 0;
  int rc = f->real()->pMethods->xFileSize(f->real(), &cur);
  if (rc != SQLITE_OK) return rc;
  // Blocks past min(cur, durable_size) were captured by an earlier truncation.
  const int64_t end = std::min<int64_t>(cur, f->state->durable_size);
  for (int64_t b = size / kBlock; b * kBlock < end; ++b) Capture(f, b);
  return f->real()->pMethods->xTruncate(f->real(), size);
}

int Sync(sqlite3_file* file, int flags) {
  FaultFile* f = Cast(file);
  if (!f->state) return f->real()->pMethods->xSync(f->real(), flags);
  MutexLock lock(&Reg().mu);
  FileState& s = *f->state;
  if (IsDead(s.path)) return SQLITE_OK;
  if (const VfsFault* fault = FaultFor(f, VfsOp::kSync)) {
    if (fault->kill) return SQLITE_OK;
    if (fault->lose_unsynced) {
      for (auto& [b, pre] : s.dirty) s.lost.emplace(b, std::move(pre));
      s.dirty.clear();
    }
    return fault->rc ? fault->rc : DefaultRc(VfsOp::kSync);
  }
  int rc = f->real()->pMethods->xSync(f->real(), flags);
  if (rc != SQLITE_OK) return rc;
  sqlite3_int64 size = 0;
  rc = f->real()->pMethods->xFileSize(f->real(), &size);
  if (rc != SQLITE_OK) return rc;
  s.dirty.clear();
  s.durable_size = size;
  // Lost blocks past the durable end are gone for good; one across it keeps
  // only what is inside.
  for (auto it = s.lost.begin(); it != s.lost.end();) {
    if (it->first * kBlock >= size) {
      it = s.lost.erase(it);
    } else {
      ++it;
    }
  }
  return SQLITE_OK;
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  FaultFile* f = Cast(file);
  return f->real()->pMethods->xFileSize(f->real(), size);
}
int Lock(sqlite3_file* file, int level) {
  FaultFile* f = Cast(file);
  return f->real()->pMethods->xLock(f->real(), level);
}
int Unlock(sqlite3_file* file, int level) {
  FaultFile* f = Cast(file);
  return f->real()->pMethods->xUnlock(f->real(), level);
}
int CheckReservedLock(sqlite3_file* file, int* out) {
  FaultFile* f = Cast(file);
  return f->real()->pMethods->xCheckReservedLock(f->real(), out);
}
int FileControl(sqlite3_file* file, int op, void* arg) {
  FaultFile* f = Cast(file);
  return f->real()->pMethods->xFileControl(f->real(), op, arg);
}
int SectorSize(sqlite3_file* file) {
  FaultFile* f = Cast(file);
  return f->real()->pMethods->xSectorSize(f->real());
}
int DeviceCharacteristics(sqlite3_file* file) {
  FaultFile* f = Cast(file);
  return f->real()->pMethods->xDeviceCharacteristics(f->real());
}
int ShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  FaultFile* f = Cast(file);
  if (f->state) {
    MutexLock lock(&Reg().mu);
    if (!IsDead(f->state->path)) {
      if (const VfsFault* fault = FaultFor(f, VfsOp::kShmMap); fault && !fault->kill) {
        *out = nullptr;
        return ResultOf(*fault, VfsOp::kShmMap);
      }
    }
  }
  return f->real()->pMethods->xShmMap(f->real(), region, size, extend, out);
}
int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  FaultFile* f = Cast(file);
  return f->real()->pMethods->xShmLock(f->real(), offset, n, flags);
}
void ShmBarrier(sqlite3_file* file) {
  FaultFile* f = Cast(file);
  f->real()->pMethods->xShmBarrier(f->real());
}
int ShmUnmap(sqlite3_file* file, int delete_flag) {
  FaultFile* f = Cast(file);
  return f->real()->pMethods->xShmUnmap(f->real(), delete_flag);
}

// --- vfs methods ---

int Open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  FaultFile* f = Cast(file);
  f->state = nullptr;
  f->kind = VfsFile::kAny;
  int rc = g_real->xOpen(g_real, name, f->real(), flags, out_flags);
  // SQLite calls xClose whenever pMethods is set, even after a failed open.
  f->base.pMethods = f->real()->pMethods ? &g_methods : nullptr;
  if (rc != SQLITE_OK || name == nullptr) return rc;
  if (flags & SQLITE_OPEN_MAIN_DB) {
    f->kind = VfsFile::kDb;
  } else if (flags & SQLITE_OPEN_WAL) {
    f->kind = VfsFile::kWal;
  } else if (flags & (SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_SUPER_JOURNAL)) {
    f->kind = VfsFile::kJournal;
  } else {
    return rc;  // temporary files are not tracked
  }
  struct stat st {};
  const bool have_stat = ::stat(name, &st) == 0;
  MutexLock lock(&Reg().mu);
  std::unique_ptr<FileState>& slot = Reg().files[name];
  if (!slot) {
    slot = std::make_unique<FileState>();
    slot->path = name;
  }
  FileState& s = *slot;
  // A file first seen, or replaced behind the VFS's back, counts as durable.
  if (!s.initialized || (have_stat && (st.st_dev != s.dev || st.st_ino != s.ino))) {
    s.initialized = true;
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.durable_size = have_stat ? st.st_size : 0;
    s.dirty.clear();
    s.lost.clear();
  }
  ++s.handles;
  f->state = &s;
  return rc;
}

int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
  {
    MutexLock lock(&Reg().mu);
    if (IsDead(name)) return SQLITE_OK;
    auto it = Reg().files.find(name);
    if (it != Reg().files.end()) {
      it->second->initialized = false;
      it->second->dirty.clear();
      it->second->lost.clear();
    }
  }
  return g_real->xDelete(g_real, name, sync_dir);
}

int Access(sqlite3_vfs*, const char* name, int flags, int* out) { return g_real->xAccess(g_real, name, flags, out); }
int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_real->xFullPathname(g_real, name, n, out);
}
void* DlOpen(sqlite3_vfs*, const char* name) { return g_real->xDlOpen(g_real, name); }
void DlError(sqlite3_vfs*, int n, char* out) { g_real->xDlError(g_real, n, out); }
void (*DlSym(sqlite3_vfs*, void* h, const char* sym))(void) { return g_real->xDlSym(g_real, h, sym); }
void DlClose(sqlite3_vfs*, void* h) { g_real->xDlClose(g_real, h); }
int Randomness(sqlite3_vfs*, int n, char* out) { return g_real->xRandomness(g_real, n, out); }
int Sleep(sqlite3_vfs*, int us) { return g_real->xSleep(g_real, us); }
int CurrentTime(sqlite3_vfs*, double* out) { return g_real->xCurrentTime(g_real, out); }
int GetLastError(sqlite3_vfs*, int n, char* out) { return g_real->xGetLastError(g_real, n, out); }
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) { return g_real->xCurrentTimeInt64(g_real, out); }

void Register() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_real = sqlite3_vfs_find("unix");
    if (g_real == nullptr) g_real = sqlite3_vfs_find(nullptr);
    if (g_real == nullptr || g_real->iVersion < 2) {
      std::fprintf(stderr, "FaultVfs: no usable default SQLite VFS\n");
      std::abort();
    }
    g_methods = sqlite3_io_methods{};
    // Version 2: shared memory (WAL) but no xFetch, so SQLite never maps the
    // DB and every write goes through xWrite.
    g_methods.iVersion = 2;
    g_methods.xClose = Close;
    g_methods.xRead = Read;
    g_methods.xWrite = Write;
    g_methods.xTruncate = Truncate;
    g_methods.xSync = Sync;
    g_methods.xFileSize = FileSize;
    g_methods.xLock = Lock;
    g_methods.xUnlock = Unlock;
    g_methods.xCheckReservedLock = CheckReservedLock;
    g_methods.xFileControl = FileControl;
    g_methods.xSectorSize = SectorSize;
    g_methods.xDeviceCharacteristics = DeviceCharacteristics;
    g_methods.xShmMap = ShmMap;
    g_methods.xShmLock = ShmLock;
    g_methods.xShmBarrier = ShmBarrier;
    g_methods.xShmUnmap = ShmUnmap;

    g_vfs = sqlite3_vfs{};
    g_vfs.iVersion = 2;
    g_vfs.szOsFile = static_cast<int>(sizeof(FaultFile)) + g_real->szOsFile;
    g_vfs.mxPathname = g_real->mxPathname;
    g_vfs.zName = "remapfs-faulty";
    g_vfs.xOpen = Open;
    g_vfs.xDelete = Delete;
    g_vfs.xAccess = Access;
    g_vfs.xFullPathname = FullPathname;
    g_vfs.xDlOpen = DlOpen;
    g_vfs.xDlError = DlError;
    g_vfs.xDlSym = DlSym;
    g_vfs.xDlClose = DlClose;
    g_vfs.xRandomness = Randomness;
    g_vfs.xSleep = Sleep;
    g_vfs.xCurrentTime = CurrentTime;
    g_vfs.xGetLastError = GetLastError;
    g_vfs.xCurrentTimeInt64 = CurrentTimeInt64;
    if (sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0) != SQLITE_OK) {
      std::fprintf(stderr, "FaultVfs: sqlite3_vfs_register failed\n");
      std::abort();
    }
  });
}

// Writes `bytes` at `off` of fd, all of it. Test code: a failure aborts.
void PWriteAll(int fd, const std::string& path, const char* bytes, size_t n, int64_t off) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, bytes, n, off);
    if (w <= 0) {
      std::fprintf(stderr, "FaultVfs::PowerCut: pwrite %s: %s\n", path.c_str(), std::strerror(errno));
      std::abort();
    }
    bytes += w;
    n -= static_cast<size_t>(w);
    off += w;
  }
}

// Applies a power cut to one file. REQUIRES: no handle open.
void CutFile(FileState& s, std::mt19937_64& rng, bool tear, VfsCutStats* stats) REQUIRES(Reg().mu) {
  const int fd = ::open(s.path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {  // deleted meanwhile: nothing to restore
    s.initialized = false;
    s.dirty.clear();
    s.lost.clear();
    return;
  }
  struct stat st {};
  ::fstat(fd, &st);
  const int64_t cur = st.st_size;
  if (s.dirty.empty() && s.lost.empty() && cur == s.durable_size) {
    ::close(fd);
    return;
  }
  ++stats->files;
  // With tear, the new size may have reached the disk; else the synced one.
  int64_t final_size = s.durable_size;
  if (tear && cur != s.durable_size && (rng() & 1)) final_size = cur;
  if (final_size != cur) {
    if (::ftruncate(fd, final_size) != 0) {
      std::fprintf(stderr, "FaultVfs::PowerCut: ftruncate %s: %s\n", s.path.c_str(), std::strerror(errno));
      std::abort();
    }
  }
  if (final_size != cur && final_size == s.durable_size) ++stats->sizes_reverted;
  auto restore = [&](int64_t b, const std::string& pre) {
    const int64_t off = b * kBlock;
    if (off >= final_size) return;
    std::string block = pre;
    block.resize(static_cast<size_t>(std::min(kBlock, final_size - off)), '\0');
    PWriteAll(fd, s.path, block.data(), block.size(), off);
  };
  for (const auto& [b, pre] : s.dirty) {
    // A block the (reverted) truncation had cut off has nothing new to keep.
    const bool cut_off = final_size > cur && (b + 1) * kBlock > cur;
    if (tear && !cut_off && (rng() & 1)) {
      ++stats->blocks_kept;
      continue;
    }
    ++stats->blocks_reverted;
    restore(b, pre);
  }
  for (const auto& [b, pre] : s.lost) {
    ++stats->blocks_reverted;
    restore(b, pre);
  }
  ::close(fd);
  s.durable_size = final_size;
  s.dirty.clear();
  s.lost.clear();
  // The new inode state is what the next open will see.
  if (::stat(s.path.c_str(), &st) == 0) {
    s.dev = st.st_dev;
    s.ino = st.st_ino;
  }
}

}  // namespace

const char* FaultVfs::Name() {
  Register();
  return g_vfs.zName;
}

uint64_t FaultVfs::Inject(const VfsFault& fault) {
  Register();
  MutexLock lock(&Reg().mu);
  const uint64_t id = Reg().next_id++;
  Reg().faults.push_back(Fault{id, fault});
  Reg().fired[id] = 0;
  return id;
}

uint64_t FaultVfs::Fired(uint64_t id) {
  MutexLock lock(&Reg().mu);
  auto it = Reg().fired.find(id);
  return it == Reg().fired.end() ? 0 : it->second;
}

void FaultVfs::ClearFaults(const std::string& path_prefix) {
  MutexLock lock(&Reg().mu);
  std::erase_if(Reg().faults, [&](const Fault& f) { return StartsWith(f.spec.path_prefix, path_prefix); });
}

void FaultVfs::Kill(const std::string& path_prefix) {
  MutexLock lock(&Reg().mu);
  Reg().dead.push_back(path_prefix);
}

void FaultVfs::Revive(const std::string& path_prefix) {
  MutexLock lock(&Reg().mu);
  std::erase_if(Reg().dead, [&](const std::string& p) { return StartsWith(p, path_prefix); });
}

VfsCutStats FaultVfs::PowerCut(const std::string& path_prefix, uint64_t seed, bool tear) {
  Register();
  VfsCutStats stats;
  std::mt19937_64 rng(seed);
  MutexLock lock(&Reg().mu);
  std::erase_if(Reg().dead, [&](const std::string& p) { return StartsWith(p, path_prefix); });
  for (auto& [path, state] : Reg().files) {
    if (!StartsWith(path, path_prefix) || !state->initialized) continue;
    if (state->handles != 0) {
      std::fprintf(stderr, "FaultVfs::PowerCut: %s is still open (%d handle(s)); close every connection first\n",
                   path.c_str(), state->handles);
      std::abort();
    }
    CutFile(*state, rng, tear, &stats);
  }
  return stats;
}

uint64_t FaultVfs::UnsyncedBlocks(const std::string& path_prefix) {
  MutexLock lock(&Reg().mu);
  uint64_t n = 0;
  for (const auto& [path, state] : Reg().files) {
    if (StartsWith(path, path_prefix)) n += state->dirty.size() + state->lost.size();
  }
  return n;
}

uint64_t FaultVfs::LostBlocks(const std::string& path_prefix) {
  MutexLock lock(&Reg().mu);
  uint64_t n = 0;
  for (const auto& [path, state] : Reg().files) {
    if (StartsWith(path, path_prefix)) n += state->lost.size();
  }
  return n;
}

VfsCutStats PowerCutAll(MemEnv* env, const std::string& db_path, uint64_t seed, bool tear) {
  env->PowerCut(seed, tear);
  return FaultVfs::PowerCut(db_path, seed * 0x9E3779B97F4A7C15ull + 1, tear);
}

VfsCutStats CrashAndPowerCut(std::unique_ptr<Engine>* engine, MemEnv* env, const std::string& db_path, uint64_t seed,
                             bool tear) {
  FaultVfs::Kill(db_path);
  (*engine)->AbandonForTest();
  engine->reset();
  return PowerCutAll(env, db_path, seed, tear);
}

}  // namespace remapfs
