#include "tests/support/mem_env.h"

#include "store/identity.h"

#include <cerrno>
#include <cstring>
#include <random>
#include <set>
#include <utility>

namespace remapfs {

namespace {
constexpr uint64_t kBlock = 512;
}

struct MemEnv::File {
  File(uint64_t size, uint64_t inode) : current(size, '\0'), durable(current), ino(inode) {}

  Mutex mu;
  std::string current GUARDED_BY(mu);       // what readers see
  std::string durable GUARDED_BY(mu);       // what survives a power cut
  std::set<uint64_t> dirty GUARDED_BY(mu);  // blocks written since the last Sync
  bool locked GUARDED_BY(mu) = false;
  int read_errno GUARDED_BY(mu) = 0;  // MemEnv::InjectError
  int write_errno GUARDED_BY(mu) = 0;
  int sync_errno GUARDED_BY(mu) = 0;
  const uint64_t ino;                 // unique per file, as an inode number
  std::string stamp GUARDED_BY(mu);   // the identity stamp (identity.h)
};

namespace {

class MemBackend final : public Backend {
 public:
  MemBackend(std::string path, std::shared_ptr<MemEnv::File> file, bool locked)
      : path_(std::move(path)), file_(std::move(file)), locked_(locked) {}
  ~MemBackend() override {
    if (locked_) {
      MutexLock lock(&file_->mu);
      file_->locked = false;
    }
  }

  Status ReadAt(uint64_t offset, size_t n, char* out) override {
    MutexLock lock(&file_->mu);
    if (file_->read_errno != 0) return Status::FromErrno("read " + path_, file_->read_errno);
    if (offset + n > file_->current.size()) return Status::IOError("read beyond the end of " + path_, EIO);
    std::memcpy(out, file_->current.data() + offset, n);
    return Status::OK();
  }

  Status WriteAt(uint64_t offset, size_t n, const char* data) override {
    MutexLock lock(&file_->mu);
    if (file_->write_errno != 0) return Status::FromErrno("write " + path_, file_->write_errno);
    if (offset + n > file_->current.size()) return Status::IOError("write beyond the end of " + path_, EIO);
    std::memcpy(file_->current.data() + offset, data, n);
    for (uint64_t b = offset / kBlock; b * kBlock < offset + n; ++b) file_->dirty.insert(b);
    return Status::OK();
  }

  Status Sync() override {
    MutexLock lock(&file_->mu);
    if (const int err = std::exchange(file_->sync_errno, 0); err != 0) {
      file_->dirty.clear();  // marked clean, never written: lost at eviction
      return Status::FromErrno("fdatasync " + path_, err);
    }
    for (uint64_t b : file_->dirty) {
      std::memcpy(file_->durable.data() + b * kBlock, file_->current.data() + b * kBlock, kBlock);
    }
    file_->dirty.clear();
    return Status::OK();
  }

  uint64_t Size() const override {
    MutexLock lock(&file_->mu);
    return file_->current.size();
  }
  const std::string& path() const override { return path_; }

  Status Identify(ImageIdentity* id) override {
    MutexLock lock(&file_->mu);
    *id = ImageIdentity{"file ino=" + std::to_string(file_->ino), true, file_->stamp, path_};
    return Status::OK();
  }
  Status Stamp(const std::string& uuid) override {
    MutexLock lock(&file_->mu);
    file_->stamp = uuid;
    return Status::OK();
  }
  Status Reserve() override { return Status::OK(); }

 private:
  const std::string path_;
  const std::shared_ptr<MemEnv::File> file_;
  const bool locked_;
};

}  // namespace

MemEnv::MemEnv() = default;
MemEnv::~MemEnv() = default;

Status MemEnv::OpenBackend(const std::string& path, const BackendOptions& options,
                           std::unique_ptr<Backend>* result) {
  std::shared_ptr<File> file;
  {
    MutexLock lock(&mu_);
    auto it = files_.find(path);
    if (it == files_.end()) return Status::FromErrno("open " + path, ENOENT);
    file = it->second;
  }
  if (options.lock) {
    MutexLock lock(&file->mu);
    if (file->locked) return Status::Busy(path + " is in use by another remapfs process");
    file->locked = true;
  }
  *result = std::make_unique<MemBackend>(path, file, options.lock);
  return Status::OK();
}

Status MemEnv::CreateFile(const std::string& path, uint64_t size) {
  if (size % kBlock != 0) return Status::InvalidArgument("MemEnv sizes are multiples of 512");
  MutexLock lock(&mu_);
  if (files_.count(path)) return Status::FromErrno("create " + path, EEXIST);
  files_.emplace(path, std::make_shared<File>(size, next_ino_++));
  return Status::OK();
}

bool MemEnv::FileExists(const std::string& path) {
  MutexLock lock(&mu_);
  return files_.count(path) != 0;
}

void MemEnv::DeleteFile(const std::string& path) {
  MutexLock lock(&mu_);
  files_.erase(path);
}

void MemEnv::InjectError(const std::string& path, Op op, int err) {
  MutexLock lock(&mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return;
  File& f = *it->second;
  MutexLock flock(&f.mu);
  (op == Op::kRead ? f.read_errno : op == Op::kWrite ? f.write_errno : f.sync_errno) = err;
}

void MemEnv::DropCaches() {
  MutexLock lock(&mu_);
  for (auto& [path, file] : files_) {
    MutexLock flock(&file->mu);
    std::string current = file->durable;
    for (uint64_t b : file->dirty) {
      std::memcpy(current.data() + b * kBlock, file->current.data() + b * kBlock, kBlock);
    }
    file->current = std::move(current);
  }
}

void MemEnv::PowerCut(uint64_t seed, bool tear) {
  std::mt19937_64 rng(seed);
  MutexLock lock(&mu_);
  for (auto& [path, file] : files_) {
    MutexLock flock(&file->mu);
    for (uint64_t b : file->dirty) {
      if (tear && (rng() & 1)) {
        std::memcpy(file->durable.data() + b * kBlock, file->current.data() + b * kBlock, kBlock);
      }
    }
    file->dirty.clear();
    file->current = file->durable;
  }
}

std::string MemEnv::Contents(const std::string& path) {
  MutexLock lock(&mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return {};
  MutexLock flock(&it->second->mu);
  return it->second->current;
}

void MemEnv::Poke(const std::string& path, uint64_t offset, const std::string& bytes) {
  MutexLock lock(&mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return;
  File& f = *it->second;
  MutexLock flock(&f.mu);
  f.current.replace(offset, bytes.size(), bytes);
  f.durable.replace(offset, bytes.size(), bytes);
}

}  // namespace remapfs
