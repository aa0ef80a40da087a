// The POSIX Env: regular files and block devices.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "store/backend.h"
#include "store/identity.h"

namespace remapfs {
namespace {

std::string Where(const char* op, const std::string& path, uint64_t offset, size_t n) {
  return std::string(op) + " " + path + " at " + std::to_string(offset) + "+" + std::to_string(n);
}

// Scratch space for O_DIRECT transfers whose caller buffer, offset or length
// is not aligned.
char* BounceBuffer(size_t n) {
  thread_local AlignedBuffer buf;
  return buf.Get(n);
}

class PosixBackend final : public Backend {
 public:
  PosixBackend(std::string path, int fd, uint64_t size, bool direct, size_t block)
      : path_(std::move(path)), fd_(fd), size_(size), direct_(direct), block_(block) {}
  ~PosixBackend() override { ::close(fd_); }

  Status ReadAt(uint64_t offset, size_t n, char* out) override {
    if (!direct_ || Aligned(offset, n, out)) return Transfer(false, offset, n, out);
    const uint64_t start = offset & ~(uint64_t{block_} - 1);
    const size_t span = RoundUp(offset + n) - start;
    char* buf = BounceBuffer(span);
    if (buf == nullptr) return Status::IOError("out of memory for a bounce buffer", ENOMEM);
    Status s = Transfer(false, start, span, buf);
    if (s.ok()) std::memcpy(out, buf + (offset - start), n);
    return s;
  }

  Status WriteAt(uint64_t offset, size_t n, const char* data) override {
    if (!direct_ || Aligned(offset, n, data)) return Transfer(true, offset, n, const_cast<char*>(data));
    const uint64_t start = offset & ~(uint64_t{block_} - 1);
    const uint64_t end = RoundUp(offset + n);
    const size_t span = end - start;
    char* buf = BounceBuffer(span);
    if (buf == nullptr) return Status::IOError("out of memory for a bounce buffer", ENOMEM);
    // The partial blocks at either end hold bytes of other sectors, which a
    // concurrent request may be writing (slots of unrelated sectors share a
    // block): hold their stripes from the read to the write, or one of the
    // two read-modify-writes would put back the other's old bytes.
    const bool head_partial = start != offset;
    const bool tail_partial = end != offset + n;
    size_t first = Stripe(head_partial ? start : end - block_), second = Stripe(tail_partial ? end - block_ : start);
    if (first > second) std::swap(first, second);  // one lock order: no two writers wait on each other
    std::unique_lock<std::mutex> first_lock(rmw_stripes_[first], std::defer_lock);
    std::unique_lock<std::mutex> second_lock(rmw_stripes_[second], std::defer_lock);
    if (head_partial || tail_partial) {
      first_lock.lock();
      if (second != first) second_lock.lock();
    }
    // Read-modify-write of the partial blocks at either end (once if both
    // ends lie in the same block).
    if (head_partial) {
      Status s = Transfer(false, start, block_, buf);
      if (!s.ok()) return s;
    }
    if (tail_partial && !(head_partial && end - block_ == start)) {
      Status s = Transfer(false, end - block_, block_, buf + span - block_);
      if (!s.ok()) return s;
    }
    std::memcpy(buf + (offset - start), data, n);
    return Transfer(true, start, span, buf);
  }

  Status Sync() override {
    while (::fdatasync(fd_) != 0) {
      if (errno != EINTR) return Status::FromErrno("fdatasync " + path_, errno);
    }
    return Status::OK();
  }

  uint64_t Size() const override { return size_; }
  const std::string& path() const override { return path_; }
  Status Identify(ImageIdentity* id) override { return IdentifyFd(fd_, path_, id); }
  Status Stamp(const std::string& uuid) override { return StampFd(fd_, path_, uuid); }

  Direct direct() override { return direct_ ? Direct{fd_, block_} : Direct{}; }

  // From the page cache only: an O_DIRECT splice copies, which saves nothing.
  Status SpliceTo(uint64_t offset, size_t n, int pipe) override {
    if (direct_) return Backend::SpliceTo(offset, n, pipe);
    loff_t at = static_cast<loff_t>(offset);
    for (size_t left = n; left > 0;) {
      const ssize_t r = ::splice(fd_, &at, pipe, nullptr, left, SPLICE_F_MOVE);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Status::FromErrno(Where("splice", path_, at, left), errno);
      if (r == 0) return Status::IOError(Where("splice", path_, at, left) + ": unexpected end of file", EIO);
      left -= static_cast<size_t>(r);
    }
    return Status::OK();
  }

  Status Reserve() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Status::FromErrno("stat " + path_, errno);
    if (!S_ISREG(st.st_mode)) return Status::OK();
    // glibc falls back to writing a zero into each unallocated block where
    // the filesystem has no fallocate; either way the data stays as it is.
    const int err = ::posix_fallocate(fd_, 0, static_cast<off_t>(size_));
    if (err != 0) return Status::FromErrno("posix_fallocate " + path_, err);
    return Status::OK();
  }

 private:
  bool Aligned(uint64_t offset, size_t n, const char* buf) const {
    return offset % block_ == 0 && n % block_ == 0 &&
           reinterpret_cast<uintptr_t>(buf) % AlignedBuffer::kAlign == 0;
  }
  uint64_t RoundUp(uint64_t x) const { return (x + block_ - 1) & ~(uint64_t{block_} - 1); }
  size_t Stripe(uint64_t block_offset) const { return (block_offset / block_) % rmw_stripes_.size(); }

  // pread/pwrite all n bytes, retrying EINTR and short transfers.
  Status Transfer(bool write, uint64_t offset, size_t n, char* buf) {
    if (offset + n > size_) {
      return Status::IOError(Where(write ? "pwrite" : "pread", path_, offset, n) + ": beyond the end",
                             EIO);
    }
    size_t done = 0;
    while (done < n) {
      ssize_t r = write ? ::pwrite(fd_, buf + done, n - done, offset + done)
                        : ::pread(fd_, buf + done, n - done, offset + done);
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(Where(write ? "pwrite" : "pread", path_, offset + done, n - done), errno);
      }
      if (r == 0) {
        return Status::IOError(Where(write ? "pwrite" : "pread", path_, offset + done, n - done) +
                                   ": unexpected end of file",
                               EIO);
      }
      done += static_cast<size_t>(r);
    }
    return Status::OK();
  }

  const std::string path_;
  const int fd_;
  const uint64_t size_;
  const bool direct_;
  const size_t block_;  // O_DIRECT offset/length alignment
  // By block number, see WriteAt. Plain std::mutex, not the annotated Mutex:
  // they guard bytes on disk, no member the analysis could check, and are
  // taken conditionally.
  std::array<std::mutex, 64> rmw_stripes_;
};

class PosixEnv final : public Env {
 public:
  Status OpenBackend(const std::string& path, const BackendOptions& options,
                     std::unique_ptr<Backend>* result) override {
    const int mode = options.read_only ? O_RDONLY : O_RDWR;
    int fd = ::open(path.c_str(), mode | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("open " + path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      Status s = Status::FromErrno("stat " + path, errno);
      ::close(fd);
      return s;
    }
    uint64_t size = 0;
    size_t block = 4096;
    bool direct = options.direct;
    if (S_ISBLK(st.st_mode)) {
      int logical = 0;
      if (::ioctl(fd, BLKGETSIZE64, &size) != 0 || ::ioctl(fd, BLKSSZGET, &logical) != 0) {
        Status s = Status::FromErrno("size of block device " + path, errno);
        ::close(fd);
        return s;
      }
      block = static_cast<size_t>(logical);
      direct = true;
    } else if (S_ISREG(st.st_mode)) {
      size = static_cast<uint64_t>(st.st_size);
    } else {
      ::close(fd);
      return Status::InvalidArgument(path + " is neither a regular file nor a block device");
    }
    if (options.lock && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) return Status::Busy(path + " is in use by another remapfs process");
      return Status::FromErrno("lock " + path, err);
    }
    // Linux lets O_DIRECT be set on an open descriptor, so the lock taken
    // above is never let go in between.
    if (direct && ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_DIRECT) != 0) {
      Status s = Status::FromErrno("set O_DIRECT on " + path, errno);
      ::close(fd);
      return s;
    }
    *result = std::make_unique<PosixBackend>(path, fd, size, direct, block);
    return Status::OK();
  }

  Status CreateFile(const std::string& path, uint64_t size) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Status::FromErrno("create " + path, errno);
    Status s;
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) s = Status::FromErrno("resize " + path, errno);
    if (s.ok() && ::fsync(fd) != 0) s = Status::FromErrno("fsync " + path, errno);
    ::close(fd);
    if (s.ok()) s = SyncParentDir(path);
    if (!s.ok()) ::unlink(path.c_str());
    return s;
  }

  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
  void DeleteFile(const std::string& path) override { ::unlink(path.c_str()); }
};

}  // namespace

Status SyncParentDir(const std::string& path) {
  // Not `dir = "."` after the fact: gcc 12 at -O3 takes that assignment for
  // an overlapping copy (-Wrestrict, GCC bug 105329).
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open directory " + dir, errno);
  Status s;
  if (::fsync(fd) != 0) s = Status::FromErrno("fsync directory " + dir, errno);
  ::close(fd);
  return s;
}

Status Backend::SpliceTo(uint64_t offset, size_t n, int) {
  return Status::IOError(Where("splice", path(), offset, n) + ": not supported by this image", EOPNOTSUPP);
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

char* AlignedBuffer::Get(size_t n) {
  if (size_ < n) {
    std::free(data_);
    const size_t rounded = (n + kAlign - 1) / kAlign * kAlign;
    data_ = static_cast<char*>(std::aligned_alloc(kAlign, rounded));
    size_ = data_ ? rounded : 0;
  }
  return data_;
}

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv;
  return env;
}

}  // namespace remapfs
