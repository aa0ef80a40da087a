#include "store/io_ring.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace remapfs {
namespace {

// The user data of the ring's own read of its eventfd.
void* const kWakeTag = reinterpret_cast<void*>(uintptr_t{1});

[[noreturn]] void Fatal(const char* what, int err) {
  // Requests in flight could never complete: only a restart resolves that
  // (the set is crash-consistent).
  spdlog::critical("{}: {}", what, std::strerror(err));
  std::abort();
}

}  // namespace

Status IoRing::Open(unsigned depth, std::unique_ptr<IoRing>* result) {
  std::unique_ptr<IoRing> r(new IoRing);
  std::promise<Status> opened;
  std::future<Status> status = opened.get_future();
  r->thread_ = std::thread([ring = r.get(), depth, &opened] { ring->Main(depth, &opened); });
  Status s = status.get();
  if (!s.ok()) {
    r->thread_.join();
    return s;
  }
  *result = std::move(r);
  return Status::OK();
}

void IoRing::Main(unsigned depth, std::promise<Status>* opened) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    opened->set_value(Status::FromErrno("eventfd", errno));
    return;
  }
  // This thread is the only submitter (Linux 6.1): the kernel then finishes
  // completions only when it waits for them, in its own time, instead of
  // interrupting it. Older kernels take the ring without.
  int err = io_uring_queue_init(depth, &ring_, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
  if (err == -EINVAL) err = io_uring_queue_init(depth, &ring_, 0);
  if (err < 0) {
    ::close(wake_fd_);
    opened->set_value(Status::FromErrno("io_uring_queue_init", -err));
    return;
  }
  // Completions never outrun the queue: the kernel keeps overflowing ones
  // (IORING_FEAT_NODROP, Linux 5.5) instead of dropping them.
  if (!(ring_.features & IORING_FEAT_NODROP)) {
    io_uring_queue_exit(&ring_);
    ::close(wake_fd_);
    opened->set_value(Status::IOError("io_uring without IORING_FEAT_NODROP (Linux < 5.5)", ENOSYS));
    return;
  }
  opened->set_value(Status::OK());
  Run();
  io_uring_queue_exit(&ring_);
  ::close(wake_fd_);
}

IoRing::~IoRing() { Stop(); }

void IoRing::Read(int fd, char* buf, size_t n, uint64_t offset, Op* op) {
  Enqueue(Request{false, fd, buf, n, offset, op});
}

void IoRing::Write(int fd, const char* buf, size_t n, uint64_t offset, Op* op) {
  Enqueue(Request{true, fd, const_cast<char*>(buf), n, offset, op});
}

void IoRing::Enqueue(const Request& r) {
  MutexLock lock(&mu_);
  queue_.push_back(r);
  WakeIfWaiting();
}

// Completes the ring's read of the eventfd (or, before it is queued, leaves
// a count that completes it at once). Under mu_: the thread closes the
// eventfd once it saw stopping_ under mu_, so it is open here.
void IoRing::WakeIfWaiting() {
  if (!waiting_) return;
  waiting_ = false;
  const uint64_t one = 1;
  while (::write(wake_fd_, &one, sizeof one) < 0) {
    if (errno != EINTR) Fatal("write eventfd", errno);
  }
}

io_uring_sqe* IoRing::NextSqe() {
  io_uring_sqe* sqe;
  while ((sqe = io_uring_get_sqe(&ring_)) == nullptr) {
    const int r = io_uring_submit(&ring_);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) Fatal("io_uring_submit", -r);
  }
  return sqe;
}

// Each round: submit what was queued; wait for a completion if there is
// nothing else to do (armed with a read of the eventfd, which Enqueue
// completes); complete what finished.
void IoRing::Run() {
  std::vector<Request> batch;
  uint64_t in_flight = 0;
  bool wake_armed = false;
  for (;;) {
    bool wait;
    {
      MutexLock lock(&mu_);
      batch.swap(queue_);
      if (batch.empty() && stopping_ && in_flight == 0) return;
      wait = batch.empty();
      waiting_ = wait;
    }
    for (const Request& r : batch) {
      io_uring_sqe* sqe = NextSqe();
      if (r.write) {
        io_uring_prep_write(sqe, r.fd, r.buf, static_cast<unsigned>(r.n), r.offset);
      } else {
        io_uring_prep_read(sqe, r.fd, r.buf, static_cast<unsigned>(r.n), r.offset);
      }
      io_uring_sqe_set_data(sqe, r.op);
      ++in_flight;
    }
    batch.clear();
    if (wait && !wake_armed) {
      io_uring_sqe* sqe = NextSqe();
      io_uring_prep_read(sqe, wake_fd_, &wake_value_, sizeof wake_value_, 0);
      io_uring_sqe_set_data(sqe, kWakeTag);
      wake_armed = true;
    }
    const int r = io_uring_submit_and_wait(&ring_, wait ? 1 : 0);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME) Fatal("io_uring_submit_and_wait", -r);
    unsigned head, seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      void* data = io_uring_cqe_get_data(cqe);
      if (data == kWakeTag) {
        wake_armed = false;
      } else {
        static_cast<Op*>(data)->Complete(cqe->res);
        --in_flight;
      }
    }
    io_uring_cq_advance(&ring_, seen);
  }
}

void IoRing::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    WakeIfWaiting();
  }
  if (thread_.joinable()) thread_.join();  // not when Open failed
}

}  // namespace remapfs
