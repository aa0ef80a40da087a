#include "fuse/filesystem.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <ctime>
#include <string_view>

namespace remapfs {

bool RequestGate::Enter() {
  MutexLock lock(&mu_);
  if (closed_) return false;
  ++active_;
  return true;
}

void RequestGate::Leave() {
  MutexLock lock(&mu_);
  if (--active_ == 0) cv_.SignalAll();
}

void RequestGate::CloseAndDrain() {
  MutexLock lock(&mu_);
  closed_ = true;
  while (active_ != 0) cv_.Wait(mu_);
}

int RequestGate::active() const {
  MutexLock lock(&mu_);
  return active_;
}

namespace {

constexpr double kAttrTimeout = 3600.0;  // the file's attributes never change
constexpr std::string_view kXattrUuid = "user.remapfs.uuid";
constexpr std::string_view kXattrDb = "user.remapfs.db";

timespec Now() {
  timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

Filesystem* Fs(fuse_req_t req) { return static_cast<Filesystem*>(fuse_req_userdata(req)); }

// Holds the gate for a request that uses the engine.
class GateHold {
 public:
  explicit GateHold(RequestGate& gate) : gate_(gate), entered_(gate.Enter()) {}
  ~GateHold() {
    if (entered_) gate_.Leave();
  }
  explicit operator bool() const { return entered_; }

 private:
  RequestGate& gate_;
  const bool entered_;
};

// Runs fn(), turning an escaping exception into EIO (logged).
template <typename Fn>
int Guard(const char* op, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    spdlog::error("{}: {}", op, e.what());
  } catch (...) {
    spdlog::error("{}: unknown exception", op);
  }
  return EIO;
}

int CheckStatus(const Status& s) {
  if (s.ok()) return 0;
  spdlog::debug("{}", s.ToString());
  return s.ToErrno();
}

void OnInit(void* userdata, fuse_conn_info* conn) {
  (void)userdata;
  conn->max_write = Filesystem::kMaxWrite;
  conn->max_readahead = Filesystem::kMaxWrite;
  // O_TRUNC arrives with open, where it is ignored as a block device does,
  // instead of as a truncate to 0.
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;  // every write reaches the engine
  // Read replies spliced from the image's page cache (ReplySpliced).
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  conn->max_background = Filesystem::kMaxBackground;
  conn->congestion_threshold = Filesystem::kMaxBackground * 3 / 4;
}

void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Filesystem* fs = Fs(req);
  if (parent != FUSE_ROOT_ID || fs->config().file_name != name) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_entry_param e{};
  e.ino = Filesystem::kFileIno;
  e.attr = fs->Attr(e.ino);
  e.attr_timeout = kAttrTimeout;
  e.entry_timeout = kAttrTimeout;
  fuse_reply_entry(req, &e);
}

void OnGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  if (ino != FUSE_ROOT_ID && ino != Filesystem::kFileIno) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat st = Fs(req)->Attr(ino);
  fuse_reply_attr(req, &st, kAttrTimeout);
}

void OnSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  Filesystem* fs = Fs(req);
  // The image has MAIN's size, like a disk: no truncate, no growth. Other
  // attributes are fixed too; a request that changes nothing succeeds.
  if ((to_set & FUSE_SET_ATTR_SIZE) && static_cast<uint64_t>(attr->st_size) != fs->engine()->size()) {
    fuse_reply_err(req, EPERM);
    return;
  }
  if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    fuse_reply_err(req, EPERM);
    return;
  }
  struct stat st = fs->Attr(ino);
  fuse_reply_attr(req, &st, kAttrTimeout);
}

void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino != Filesystem::kFileIno) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  if (Fs(req)->config().kernel_cache) {
    fi->keep_cache = 1;
  } else {
    fi->direct_io = 1;  // each read and write reaches the engine
  }
  fuse_reply_open(req, fi);
}

}  // namespace

// Replies exactly once, in Done, from whichever thread completes the
// request; holds the gate from Start until then.
class Filesystem::IoRequest final : public Engine::IoDone {
 public:
  enum Kind { kRead, kWrite };

  // Passes the gate and hands the request to the engine; `data`: a write's
  // bytes, which are copied when the engine may answer after the handler
  // returned.
  static void Start(Filesystem* fs, fuse_req_t req, Kind kind, off_t off, size_t n, const char* data) {
    if (!fs->gate().Enter()) {
      fuse_reply_err(req, EIO);
      return;
    }
    Engine* engine = fs->engine();
    // A write the engine answers before returning needs no copy of its bytes.
    const bool needs_buffer = kind == kRead || engine->async();
    IoRequest* io = fs->TakeIoRequest();
    char* buf = io && needs_buffer ? io->buffer_.Get(std::max<size_t>(n, 1)) : nullptr;
    if (io == nullptr || (needs_buffer && buf == nullptr)) {
      if (io) fs->GiveBack(io);
      fs->gate().Leave();
      fuse_reply_err(req, ENOMEM);
      return;
    }
    io->fs_ = fs;
    io->req_ = req;
    io->kind_ = kind;
    io->n_ = n;
    try {
      if (kind == kRead) {
        engine->ReadAsync(off, n, buf, io);
      } else if (engine->async()) {
        std::memcpy(buf, data, n);
        engine->WriteAsync(off, n, buf, io);
      } else {
        engine->WriteAsync(off, n, data, io);  // answered before this returns
      }
    } catch (const std::exception& e) {
      // The engine throws before it takes the request (out of memory).
      spdlog::error("{}: {}", kind == kRead ? "read" : "write", e.what());
      io->Done(Status::IOError(e.what(), EIO));
    }
  }

  void Done(Status s) override {
    const int err = CheckStatus(s);
    if (err != 0) {
      fuse_reply_err(req_, err);
    } else if (kind_ == kWrite) {
      fuse_reply_write(req_, n_);
    } else {
      fuse_reply_buf(req_, buffer_.Get(std::max<size_t>(n_, 1)), n_);
    }
    Filesystem* fs = fs_;
    fs->GiveBack(this);  // before the gate: a drained gate may end fs
    fs->gate().Leave();
  }

 private:
  Filesystem* fs_ = nullptr;
  fuse_req_t req_ = nullptr;
  Kind kind_ = kRead;
  size_t n_ = 0;
  AlignedBuffer buffer_;
};

Filesystem::IoRequest* Filesystem::TakeIoRequest() {
  {
    MutexLock lock(&pool_mu_);
    if (!pool_.empty()) {
      IoRequest* io = pool_.back().release();
      pool_.pop_back();
      return io;
    }
  }
  return new (std::nothrow) IoRequest;
}

void Filesystem::GiveBack(IoRequest* io) {
  std::unique_ptr<IoRequest> owned(io);
  MutexLock lock(&pool_mu_);
  if (pool_.size() < kPoolSize) pool_.push_back(std::move(owned));
}

Filesystem::~Filesystem() = default;

namespace {

// A FUSE worker's pipe for spliced read replies. Non-blocking: a splice
// that does not fit fails instead of waiting for a reader that never comes.
class ReplyPipe {
 public:
  ReplyPipe() = default;
  ReplyPipe(const ReplyPipe&) = delete;
  ReplyPipe& operator=(const ReplyPipe&) = delete;
  ~ReplyPipe() { Close(); }

  // The write end of an empty pipe with room for n bytes at any offset;
  // -1 when there is none (then it is not tried again).
  int Take(size_t n) {
    if (broken_) return -1;
    if (fds_[0] < 0 && ::pipe2(fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
      fds_[0] = fds_[1] = -1;
      broken_ = true;
      return -1;
    }
    // One page more: an unaligned read spans one more page than its size.
    const size_t need = n + static_cast<size_t>(::getpagesize());
    if (room_ < need) {
      const int r = ::fcntl(fds_[1], F_SETPIPE_SZ, static_cast<int>(need));
      if (r < 0) {
        spdlog::debug("read replies are copied: a pipe of {} bytes: {}", need, std::strerror(errno));
        broken_ = true;
        return -1;
      }
      room_ = static_cast<size_t>(r);
    }
    return fds_[1];
  }
  int read_end() const { return fds_[0]; }
  // Throws away what a failed splice left in it.
  void Discard() { Close(); }
  // After a reply: the next one must not start with this one's leftovers
  // (libfuse answers an error itself when its splice fails midway).
  void DiscardLeftovers() {
    int left = 0;
    if (::ioctl(fds_[0], FIONREAD, &left) != 0 || left != 0) Close();
  }

 private:
  void Close() {
    if (fds_[0] >= 0) {
      ::close(fds_[0]);
      ::close(fds_[1]);
    }
    fds_[0] = fds_[1] = -1;
    room_ = 0;
  }

  int fds_[2] = {-1, -1};
  size_t room_ = 0;
  bool broken_ = false;
};

// Reads of at least this size are spliced: below it libfuse copies the
// pipe into a buffer anyway (it splices only from two pages on).
constexpr size_t kSpliceMin = 2 * 4096;

// Answers a read whose bytes the engine can splice (Engine::SpliceRead)
// from them, without copying them through a buffer: one copy instead of
// two. False, having answered nothing, when the read must go the ordinary
// way.
bool ReplySpliced(Filesystem* fs, fuse_req_t req, off_t off, size_t n) {
  thread_local ReplyPipe pipe;
  GateHold hold(fs->gate());
  if (!hold) return false;
  const int in = pipe.Take(n);
  if (in < 0) return false;
  if (!fs->engine()->SpliceRead(off, n, in)) {
    pipe.Discard();
    return false;
  }
  fuse_bufvec data = FUSE_BUFVEC_INIT(n);
  data.buf[0].flags = FUSE_BUF_IS_FD;
  data.buf[0].fd = pipe.read_end();
  fuse_reply_data(req, &data, FUSE_BUF_SPLICE_MOVE);  // answers an error itself
  pipe.DiscardLeftovers();
  return true;
}

void OnRead(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info*) {
  Filesystem* fs = Fs(req);
  const uint64_t image = fs->engine()->size();
  const size_t n = static_cast<uint64_t>(off) >= image ? 0 : std::min<uint64_t>(size, image - off);
  // With a ring (-o direct, block devices) reads go to the disk asynchronously.
  if (n >= kSpliceMin && !fs->engine()->async() && ReplySpliced(fs, req, off, n)) return;
  Filesystem::IoRequest::Start(fs, req, Filesystem::IoRequest::kRead, off, n, nullptr);
}

void OnWrite(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off, fuse_file_info*) {
  Filesystem* fs = Fs(req);
  const uint64_t image = fs->engine()->size();
  if (static_cast<uint64_t>(off) >= image && size > 0) {
    fuse_reply_err(req, ENOSPC);  // past the end of the disk
    return;
  }
  const size_t n = std::min<uint64_t>(size, image - off);
  Filesystem::IoRequest::Start(fs, req, Filesystem::IoRequest::kWrite, off, n, data);
}

// fsync and close-time flush both make every acknowledged write durable.
void ReplyFlush(fuse_req_t req) {
  Filesystem* fs = Fs(req);
  GateHold hold(fs->gate());
  if (!hold) {
    fuse_reply_err(req, EIO);
    return;
  }
  fuse_reply_err(req, Guard("fsync", [&] { return CheckStatus(fs->engine()->Flush()); }));
}

void OnFlush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { ReplyFlush(req); }
void OnFsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { ReplyFlush(req); }
void OnRelease(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void OnFallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length, fuse_file_info*) {
  // Every byte of the image already exists; discard is not supported.
  const uint64_t image = Fs(req)->engine()->size();
  const bool in_range = offset >= 0 && length >= 0 && static_cast<uint64_t>(offset + length) <= image;
  if ((mode & ~FALLOC_FL_KEEP_SIZE) != 0) {
    fuse_reply_err(req, EOPNOTSUPP);
  } else {
    fuse_reply_err(req, in_range ? 0 : EFBIG);
  }
}

void OnReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  if (ino != FUSE_ROOT_ID) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  Filesystem* fs = Fs(req);
  std::string buf(size, '\0');
  size_t used = 0;
  const char* names[] = {".", "..", fs->config().file_name.c_str()};
  const fuse_ino_t inos[] = {FUSE_ROOT_ID, FUSE_ROOT_ID, Filesystem::kFileIno};
  for (off_t i = off; i < 3; ++i) {
    struct stat st = fs->Attr(inos[i]);
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used, names[i], &st, i + 1);
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void OnStatfs(fuse_req_t req, fuse_ino_t) {
  Filesystem* fs = Fs(req);
  struct statvfs st{};
  st.f_bsize = st.f_frsize = fs->engine()->sector_size();
  st.f_blocks = fs->engine()->sector_count();
  st.f_files = 1;
  st.f_namemax = 255;
  fuse_reply_statfs(req, &st);
}

// The xattrs let remapctl find the set from a mountpoint or the file.
// Answers a getxattr/listxattr: the size when asked for it (size 0), else
// the bytes if they fit.
void ReplyXattr(fuse_req_t req, size_t size, const std::string& value) {
  if (size == 0) {
    fuse_reply_xattr(req, value.size());
  } else if (size < value.size()) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, value.data(), value.size());
  }
}

void OnGetxattr(fuse_req_t req, fuse_ino_t, const char* name, size_t size) {
  Filesystem* fs = Fs(req);
  std::string value;
  if (name == kXattrUuid) {
    value = fs->engine()->uuid();
  } else if (name == kXattrDb) {
    value = fs->config().db_path;
  } else {
    fuse_reply_err(req, ENODATA);
    return;
  }
  ReplyXattr(req, size, value);
}

void OnListxattr(fuse_req_t req, fuse_ino_t, size_t size) {
  std::string names;
  names.append(kXattrUuid).push_back('\0');
  names.append(kXattrDb).push_back('\0');
  ReplyXattr(req, size, names);
}

}  // namespace

Filesystem::Filesystem(FsConfig config) : config_(std::move(config)), start_time_(Now()) {}

struct stat Filesystem::Attr(fuse_ino_t ino) const {
  struct stat st{};
  st.st_ino = ino;
  st.st_uid = config_.uid;
  st.st_gid = config_.gid;
  st.st_atim = st.st_mtim = st.st_ctim = start_time_;
  if (ino == FUSE_ROOT_ID) {
    st.st_mode = S_IFDIR | 0755;
    st.st_nlink = 2;
  } else {
    st.st_mode = S_IFREG | (config_.mode & 07777);
    st.st_nlink = 1;
    st.st_size = static_cast<off_t>(engine_->size());
    st.st_blksize = engine_->sector_size();
    st.st_blocks = static_cast<blkcnt_t>(engine_->size() / 512);
  }
  return st;
}

const fuse_lowlevel_ops& Filesystem::Ops() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o{};
    o.init = OnInit;
    o.lookup = OnLookup;
    o.getattr = OnGetattr;
    o.setattr = OnSetattr;
    o.open = OnOpen;
    o.read = OnRead;
    o.write = OnWrite;
    o.flush = OnFlush;
    o.fsync = OnFsync;
    o.release = OnRelease;
    o.fallocate = OnFallocate;
    o.readdir = OnReaddir;
    o.statfs = OnStatfs;
    o.getxattr = OnGetxattr;
    o.listxattr = OnListxattr;
    return o;
  }();
  return ops;
}

}  // namespace remapfs
