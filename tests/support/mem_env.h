// MemEnv: an Env whose files live in memory, for tests and fuzzers. Each file
// remembers what was written since its last Sync, so a test can simulate a
// power cut: unsynced writes are dropped, or torn at 512-byte granularity.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "store/backend.h"
#include "store/mutex.h"

namespace remapfs {

class MemEnv final : public Env {
 public:
  MemEnv();
  ~MemEnv() override;

  Status OpenBackend(const std::string& path, const BackendOptions& options,
                     std::unique_ptr<Backend>* result) override;
  Status CreateFile(const std::string& path, uint64_t size) override;
  bool FileExists(const std::string& path) override;
  void DeleteFile(const std::string& path) override;

  // Simulates a power cut on every file: each 512-byte block written since
  // the file's last Sync keeps its old content, or, with tear == true, keeps
  // the new content with probability 1/2 (seeded). Readers see the result.
  void PowerCut(uint64_t seed, bool tear);
  // Makes a file fail as its host would, not as a bad sector does (that is
  // FaultRules): from now on every `op` on it fails with `err` (ENOSPC of a
  // full filesystem, EDQUOT, EROFS, ENOMEM...); err 0 ends it. A kSync error
  // fires once, with Linux's semantics for a failed writeback: the blocks
  // written since the last sync are marked clean without reaching the
  // medium, so the next sync returns OK without them; DropCaches or PowerCut
  // then shows what was lost.
  enum class Op { kRead, kWrite, kSync };
  void InjectError(const std::string& path, Op op, int err);
  // Evicts every clean block from the simulated page cache: readers see what
  // the medium holds, except for blocks still dirty.
  void DropCaches();
  // A copy of a file's current bytes (for comparisons in tests).
  std::string Contents(const std::string& path);
  // Overwrites bytes of a file, durably (to corrupt it in a test).
  void Poke(const std::string& path, uint64_t offset, const std::string& bytes);

  struct File;

 private:
  Mutex mu_;
  std::map<std::string, std::shared_ptr<File>> files_ GUARDED_BY(mu_);
  uint64_t next_ino_ GUARDED_BY(mu_) = 1;
};

}  // namespace remapfs
