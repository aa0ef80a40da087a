// Locks that -Wthread-safety understands: thin wrappers over std::mutex and
// std::shared_mutex (libstdc++ does not annotate its own), scoped lockers and
// a condition variable whose waits require the mutex held.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#include "store/thread_annotations.h"

namespace remapfs {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

class CAPABILITY("shared mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  void LockShared() ACQUIRE_SHARED() { mu_.lock_shared(); }
  void UnlockShared() RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

// Holds a Mutex for its lifetime; Unlock and Lock let a holder drop it for a
// while (the destructor releases it only if held).
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_->Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() RELEASE() {
    mu_->Unlock();
    held_ = false;
  }
  void Lock() ACQUIRE() {
    mu_->Lock();
    held_ = true;
  }

 private:
  Mutex* const mu_;
  bool held_ = true;
};

// Holds a SharedMutex exclusively for its lifetime.
class SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~WriterLock() RELEASE() { mu_->Unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex* const mu_;
};

// Holds a SharedMutex shared for its lifetime.
class SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex* mu) ACQUIRE_SHARED(mu) : mu_(mu) { mu_->LockShared(); }
  ~ReaderLock() RELEASE() { mu_->UnlockShared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex* const mu_;
};

// A condition variable for a Mutex. The waits take the mutex as an argument
// so that the analysis checks it is held. They may wake spuriously, so
// callers loop on their condition; there is no predicate overload because a
// predicate lambda is analysed apart from its caller, as holding no lock.
class CondVar {
 public:
  void Wait(Mutex& mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // the caller still holds it
  }
  // False once `deadline` has passed.
  template <class Clock, class Duration>
  bool WaitUntil(Mutex& mu, std::chrono::time_point<Clock, Duration> deadline) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    const bool woken = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

// A shared/exclusive lock that any thread may release, unlike
// std::shared_mutex, whose owner must: an asynchronous request takes it in
// the thread that submits the I/O and releases it in the one that completes
// it. Readers are preferred, as with glibc's default rwlock.
class HandoffSharedMutex {
 public:
  HandoffSharedMutex() = default;
  HandoffSharedMutex(const HandoffSharedMutex&) = delete;
  HandoffSharedMutex& operator=(const HandoffSharedMutex&) = delete;

  void Lock() {
    std::unique_lock<std::mutex> lock(mu_);
    while (writer_ || readers_ != 0) cv_.wait(lock);
    writer_ = true;
  }
  void Unlock() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writer_ = false;
    }
    cv_.notify_all();
  }
  void LockShared() {
    std::unique_lock<std::mutex> lock(mu_);
    while (writer_) cv_.wait(lock);
    ++readers_;
  }
  void UnlockShared() {
    bool last;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last = --readers_ == 0;
    }
    if (last) cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int readers_ = 0;
  bool writer_ = false;
};

}  // namespace remapfs
