// Backend: positional I/O on one image (MAIN or SPARE), and Env, which opens
// backends by path so that tests can swap the POSIX files for memory or for
// a fault-injecting wrapper.
//
// Thread-safety: ReadAt/WriteAt/Sync may be called from many threads at once.
// Concurrent writes of disjoint bytes never undo each other, whatever the
// alignment (a backend that must read-modify-write a device block serializes
// that per block). Callers that write overlapping bytes concurrently get one
// of the writes; the engine never does that (see the region locks in
// engine.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "store/status.h"

namespace remapfs {

struct ImageIdentity;

class Backend {
 public:
  virtual ~Backend() = default;

  // Reads exactly n bytes at offset into out. Any alignment is accepted.
  // REQUIRES: offset + n <= Size().
  virtual Status ReadAt(uint64_t offset, size_t n, char* out) = 0;
  // Writes exactly n bytes at offset. An error means the request failed as a
  // whole; which of its bytes reached the medium is unknown.
  // REQUIRES: offset + n <= Size().
  virtual Status WriteAt(uint64_t offset, size_t n, const char* data) = 0;
  // fdatasync: every write acknowledged before the call is durable when it
  // returns OK.
  virtual Status Sync() = 0;
  virtual uint64_t Size() const = 0;
  // The path, for messages.
  virtual const std::string& path() const = 0;
  // What the image is beyond its size, for MAIN's identity (identity.h).
  virtual Status Identify(ImageIdentity* id) = 0;
  // Stamps the image as set `uuid`'s MAIN (empty: removes the stamp).
  // REQUIRES: Identify said it is stampable.
  virtual Status Stamp(const std::string& uuid) = 0;
  // Where the image takes asynchronous I/O (io_ring.h): its descriptor, and
  // the alignment every offset, length and buffer of such I/O needs. fd -1:
  // none (the page cache, a memory image, or fault rules that must see each
  // request). Decided per request: fault rules come and go.
  struct Direct {
    int fd = -1;
    size_t align = 0;
  };
  virtual Direct direct() { return {}; }
  // Moves n bytes at offset into a pipe (its write end `pipe`) without
  // copying them (splice(2)): a read reply can then be spliced on to the
  // kernel. Not for every image (EOPNOTSUPP: O_DIRECT, a memory image,
  // fault rules set). A failure may leave part of the bytes in the pipe:
  // the caller empties it. REQUIRES: offset + n <= Size().
  virtual Status SpliceTo(uint64_t offset, size_t n, int pipe);
  // Gives a regular file all its blocks, so that no later write of it can
  // fail for want of space on its filesystem; nothing for a block device.
  virtual Status Reserve() = 0;
};

// A growable buffer aligned for O_DIRECT (4096 bytes). Not thread-safe:
// keep one per thread (thread_local) or per object.
class AlignedBuffer {
 public:
  static constexpr size_t kAlign = 4096;
  AlignedBuffer() = default;
  ~AlignedBuffer();
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  // At least n bytes, contents undefined; nullptr when out of memory.
  char* Get(size_t n);

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

struct BackendOptions {
  // Open with O_DIRECT even for a regular file. Block devices are always
  // opened O_DIRECT so that a write error is reported by the write that
  // caused it (DESIGN.md); regular files use the page cache unless this is set.
  bool direct = false;
  // Take an exclusive advisory lock (flock); Busy if another process has it.
  bool lock = false;
  bool read_only = false;
};

// fsync of the directory that holds `path`, so that a name just created or
// renamed there survives a power cut.
Status SyncParentDir(const std::string& path);

class Env {
 public:
  virtual ~Env() = default;

  // The POSIX environment; never deleted.
  static Env* Default();

  // Opens an existing regular file or block device.
  virtual Status OpenBackend(const std::string& path, const BackendOptions& options,
                             std::unique_ptr<Backend>* result) = 0;
  // Creates a new owner-only regular file of the given size, durably (its
  // name too); refuses to replace an existing file.
  virtual Status CreateFile(const std::string& path, uint64_t size) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  virtual void DeleteFile(const std::string& path) = 0;
};

}  // namespace remapfs
