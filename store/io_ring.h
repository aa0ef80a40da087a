// IoRing: asynchronous reads and writes through io_uring (liburing), so that
// a daemon with a few worker threads keeps as many requests in flight at the
// disk as the kernel sends it. The ring has one thread of its own, its only
// submitter: workers queue requests and go back to FUSE; the thread submits
// them, waits for completions and calls each request's Op::Complete. As the
// submitter it is also where the kernel finishes each completion, so no
// worker is woken for it.
//
// Thread-safety: Read, Write and Stop may be called from any thread; Complete
// runs on the ring's thread, one request at a time.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <thread>
#include <vector>

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

  // A ring of `depth` submission entries and its thread. Fails where the
  // kernel refuses io_uring (too old, or forbidden by seccomp or
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

  // Waits until every request has completed, then ends the thread.
  // Idempotent.
  void Stop() EXCLUDES(mu_);

 private:
  struct Request {
    bool write;
    int fd;
    char* buf;
    size_t n;
    uint64_t offset;
    Op* op;
  };

  IoRing() = default;
  void Enqueue(const Request& r) EXCLUDES(mu_);
  // The ring's thread: sets the ring up (its submitter must be the thread
  // that made it), reports how that went, then runs until stopped.
  void Main(unsigned depth, std::promise<Status>* opened);
  void Run() EXCLUDES(mu_);
  io_uring_sqe* NextSqe();
  void WakeIfWaiting() REQUIRES(mu_);

  io_uring ring_{};
  int wake_fd_ = -1;        // an eventfd: Enqueue's nudge to a waiting thread
  uint64_t wake_value_ = 0;  // the buffer of the ring's read of wake_fd_
  Mutex mu_;
  std::vector<Request> queue_ GUARDED_BY(mu_);
  bool waiting_ GUARDED_BY(mu_) = false;  // the thread waits for a completion
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace remapfs
