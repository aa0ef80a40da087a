#include "store/io_ring.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace remapfs {

Status IoRing::Open(unsigned depth, std::unique_ptr<IoRing>* result) {
  std::unique_ptr<IoRing> r(new IoRing);
  // Completions never outrun the queue: the kernel keeps overflowing ones
  // (IORING_FEAT_NODROP, Linux 5.5) instead of dropping them.
  // Not IORING_SETUP_COOP_TASKRUN: a completion is posted by its submitter,
  // a worker that sleeps in read(/dev/fuse) until FUSE's next request, which
  // at queue depth 1 waits for this very completion.
  const int err = io_uring_queue_init(depth, &r->ring_, 0);
  if (err < 0) return Status::FromErrno("io_uring_queue_init", -err);
  if (!(r->ring_.features & IORING_FEAT_NODROP)) {
    io_uring_queue_exit(&r->ring_);
    return Status::IOError("io_uring without IORING_FEAT_NODROP (Linux < 5.5)", ENOSYS);
  }
  r->reaper_ = std::thread([ring = r.get()] { ring->Reap(); });
  *result = std::move(r);
  return Status::OK();
}

IoRing::~IoRing() {
  Stop();
  io_uring_queue_exit(&ring_);
}

void IoRing::Read(int fd, char* buf, size_t n, uint64_t offset, Op* op) { Submit(false, fd, buf, n, offset, op); }

void IoRing::Write(int fd, const char* buf, size_t n, uint64_t offset, Op* op) {
  Submit(true, fd, const_cast<char*>(buf), n, offset, op);
}

void IoRing::Submit(bool write, int fd, char* buf, size_t n, uint64_t offset, Op* op) {
  MutexLock lock(&mu_);
  io_uring_sqe* sqe;
  while ((sqe = io_uring_get_sqe(&ring_)) == nullptr) SubmitQueued();
  if (write) {
    io_uring_prep_write(sqe, fd, buf, static_cast<unsigned>(n), offset);
  } else {
    io_uring_prep_read(sqe, fd, buf, static_cast<unsigned>(n), offset);
  }
  io_uring_sqe_set_data(sqe, op);
  // Release: what the submitter wrote (the op, the data) is visible to the
  // completion thread, which acquires the count before Complete (the op
  // travels through the kernel, where no tool sees that it was handed over).
  in_flight_.fetch_add(1, std::memory_order_release);
  SubmitQueued();
}

// The entries queued must reach the kernel: a request left in the queue
// would never complete. EBUSY and EAGAIN pass as the completion thread
// reaps; any other error leaves requests that cannot complete, which only a
// restart resolves (the set is crash-consistent).
void IoRing::SubmitQueued() {
  for (;;) {
    const int r = io_uring_submit(&ring_);
    if (r >= 0) return;
    if (r == -EBUSY || r == -EAGAIN) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    } else if (r != -EINTR) {
      spdlog::critical("io_uring_submit: {}", std::strerror(-r));
      std::abort();
    }
  }
}

// The completion thread: completes each request; a request without an op
// (Stop's no-op) ends it.
void IoRing::Reap() {
  for (;;) {
    io_uring_cqe* cqe = nullptr;
    const int err = io_uring_wait_cqe(&ring_, &cqe);
    if (err == -EINTR || err == -EAGAIN) continue;
    if (err < 0) {
      spdlog::critical("io_uring_wait_cqe: {}", std::strerror(-err));
      std::abort();  // requests in flight could never complete
    }
    Op* op = static_cast<Op*>(io_uring_cqe_get_data(cqe));
    const int res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    if (op == nullptr) return;
    in_flight_.load(std::memory_order_acquire);
    op->Complete(res);
    if (in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1) in_flight_.notify_all();
  }
}

void IoRing::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    for (uint64_t n; (n = in_flight_.load(std::memory_order_acquire)) != 0;) in_flight_.wait(n);
    io_uring_sqe* sqe;
    while ((sqe = io_uring_get_sqe(&ring_)) == nullptr) SubmitQueued();
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, nullptr);
    SubmitQueued();
  }
  reaper_.join();
}

}  // namespace remapfs
