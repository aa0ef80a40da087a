// The FUSE adapter: one directory holding one regular file whose bytes are
// the engine's image. Low-level libfuse API; every operation is wired in
// Ops(). Each handler replies exactly once, never while holding a lock, and
// lets no exception escape into libfuse.
//
// Requests that reach the engine pass a RequestGate, so the ordered shutdown
// can stop taking requests and wait for the ones in flight before it closes
// the engine. Reads and writes may be answered later, from the engine's
// ring's thread (Engine::ReadAsync): they hold the gate until then.
#pragma once

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "store/engine.h"
#include "store/mutex.h"

namespace remapfs {

// Counts requests inside the engine. Thread-safe.
class RequestGate {
 public:
  // False once Close() was called: the request must not touch the engine.
  bool Enter() EXCLUDES(mu_);
  void Leave() EXCLUDES(mu_);
  // No request enters from now on; returns when those inside have left.
  void CloseAndDrain() EXCLUDES(mu_);
  int active() const EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  CondVar cv_;
  int active_ GUARDED_BY(mu_) = 0;
  bool closed_ GUARDED_BY(mu_) = false;
};

struct FsConfig {
  std::string file_name;    // the one file in the mount
  std::string db_path;      // shown as the xattr user.remapfs.db
  bool kernel_cache = false;  // let the kernel page-cache the file
  mode_t mode = 0600;       // permission bits of the file (MAIN's)
  uid_t uid = 0;            // owner of the file (MAIN's)
  gid_t gid = 0;
};

class Filesystem {
 public:
  static constexpr fuse_ino_t kFileIno = 2;
  static constexpr size_t kMaxWrite = 1 << 20;

  // Background requests the kernel keeps in flight (its default is 12):
  // with -o direct each is at the disk, so this is the queue depth a
  // block device sees through a loop device or fio's libaio.
  static constexpr unsigned kMaxBackground = 64;

  explicit Filesystem(FsConfig config);
  ~Filesystem();
  // REQUIRES: called once, before the session is mounted; engine outlives
  // the session.
  void Attach(Engine* engine) { engine_ = engine; }
  static const fuse_lowlevel_ops& Ops();

  Engine* engine() const { return engine_; }
  const FsConfig& config() const { return config_; }
  RequestGate& gate() { return gate_; }
  struct stat Attr(fuse_ino_t ino) const;

  // A read or write on its way through the engine (filesystem.cc). Taken
  // from a pool and given back when answered: their aligned buffers are
  // kept, as each grows to the largest request it carried.
  class IoRequest;
  // nullptr when out of memory.
  IoRequest* TakeIoRequest() EXCLUDES(pool_mu_);
  void GiveBack(IoRequest* io) EXCLUDES(pool_mu_);

 private:
  // Requests kept for reuse; more in flight at once are freed when done.
  static constexpr size_t kPoolSize = 16;
  Engine* engine_ = nullptr;
  const FsConfig config_;
  const struct timespec start_time_;
  RequestGate gate_;
  Mutex pool_mu_;
  std::vector<std::unique_ptr<IoRequest>> pool_ GUARDED_BY(pool_mu_);
};

}  // namespace remapfs
