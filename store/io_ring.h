// IoRing: asynchronous reads and writes through io_uring (liburing), so that
// a daemon with a few worker threads keeps as many requests in flight at the
// disk as the kernel sends it. Workers submit; one completion thread reaps
// and calls each request's Op::Complete.
//
// Thread-safety: Read, Write and Stop may be called from any thread; Complete
// runs on the ring's own thread, one request at a time.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

#include "store/mutex.h"
#include "store/status.h"

namespace remapfs {

class IoRing {
 public:
  class Op {
   public:
    // `result`: the bytes transferred, or -errno. Called exactly once.
    virtual void Complete(int result) = 0;

   protected:
    ~Op() = default;
  };

  // A ring of `depth` submission entries and its completion thread. Fails
  // where the kernel refuses io_uring (too old, or forbidden by seccomp or
  // io_uring_disabled).
  static Status Open(unsigned depth, std::unique_ptr<IoRing>* result);
  ~IoRing();  // Stop()
  IoRing(const IoRing&) = delete;
  IoRing& operator=(const IoRing&) = delete;

  // Starts a pread/pwrite of n bytes at offset of fd. The buffer must stay
  // valid, and fd open, until op->Complete.
  // REQUIRES: Stop has not been called.
  void Read(int fd, char* buf, size_t n, uint64_t offset, Op* op) EXCLUDES(mu_);
  void Write(int fd, const char* buf, size_t n, uint64_t offset, Op* op) EXCLUDES(mu_);

  // Waits until every submitted request has completed, then ends the
  // completion thread. Idempotent.
  void Stop() EXCLUDES(mu_);

 private:
  IoRing() = default;
  // Queues one entry (submitting what is queued when the queue is full).
  void Submit(bool write, int fd, char* buf, size_t n, uint64_t offset, Op* op) EXCLUDES(mu_);
  void SubmitQueued() REQUIRES(mu_);
  void Reap();

  io_uring ring_{};
  Mutex mu_;  // the submission queue
  bool stopped_ GUARDED_BY(mu_) = false;
  // Submitted and not yet completed; Stop waits on it (atomic wait).
  std::atomic<uint64_t> in_flight_{0};
  std::thread reaper_;
};

}  // namespace remapfs
