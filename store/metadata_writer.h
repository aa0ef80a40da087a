// MetaWriter: the metadata writer thread, the only writer of the DB while an
// engine runs. Table changes are queued and committed in batches (group
// commit): every `interval`, and on every Flush. Before each commit it runs
// the sync_data hook (fdatasync SPARE and MAIN), so a mapping is never
// durable before the data it points to (DESIGN.md, durability 1-2).
//
// A failed data sync is remembered (sync_error): Linux reports a writeback
// error to fdatasync once and may drop the dirty pages, so a later sync that
// returns OK proves nothing about what was written before it. From then on
// no flush succeeds and nothing more is committed: the queued changes may
// point to data that was dropped. A failed sync of the DB or its WAL is
// remembered the same way (MetaStore::Apply); a commit that fails otherwise
// (disk full, a write error) is retried. Stop then returns that error, so the set
// stays marked unclean; the next open checks it and starts from the last
// commit (README: "A failed data sync").
//
// Thread-safety: Enqueue, Flush, durable_seq and error may be called from any
// thread. Stop must be called once, by the owner.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "store/changes.h"
#include "store/health.h"
#include "store/meta_store.h"
#include "store/mutex.h"

namespace remapfs {

class MetaWriter {
 public:
  struct Hooks {
    std::function<Status()> sync_data;                 // fdatasync SPARE then MAIN
    std::function<void(uint64_t)> on_durable;          // every change <= seq is durable
  };
  // REQUIRES: store and counters outlive this object.
  MetaWriter(MetaStore* store, const Counters* counters, Hooks hooks, std::chrono::milliseconds interval);
  ~MetaWriter();  // calls Stop()
  MetaWriter(const MetaWriter&) = delete;
  MetaWriter& operator=(const MetaWriter&) = delete;

  // Queues a change; returns its sequence number (1, 2, ...).
  uint64_t Enqueue(Change change) EXCLUDES(mu_);
  // Syncs the data and commits every change queued before the call; returns
  // when that is durable, or with the error that prevented it. Concurrent
  // flushes share one sync and one commit.
  Status Flush() EXCLUDES(mu_);
  // Every change with a sequence number <= this is durable.
  uint64_t durable_seq() const EXCLUDES(mu_);
  // The first failed sync (MAIN, SPARE, the DB or its WAL), or OK. Never
  // cleared while this writer runs.
  Status sync_error() const EXCLUDES(mu_);
  // A data sync made outside the writer failed (the ordered stop's own sync):
  // remembered as if it were the writer's.
  void NoteSyncFailure(const Status& s) EXCLUDES(mu_);
  // The last failure of the DB commit itself (disk full, I/O error), OK once
  // a later commit succeeded: while it is set the store cannot record new
  // table changes. A failed data sync leaves it as it was.
  Status commit_error() const EXCLUDES(mu_);
  // Commits what is queued (one last flush), stops the thread and joins it.
  // Never blocks on anything but that final commit. Idempotent.
  Status Stop() EXCLUDES(mu_);
  // Test hook (Engine::AbandonForTest): stops the thread as a crash would.
  // What is queued is dropped, neither synced nor committed; a commit
  // already under way finishes. Flushers get an error. Stop afterwards
  // returns at once.
  void Abandon() EXCLUDES(mu_);

 private:
  struct Waiter {
    bool done = false;
    Status status;
  };
  // One cycle of the thread: what it serves, and how it went.
  struct Cycle {
    bool stopping = false;
    bool retry = false;  // the last commit failed
    std::vector<Waiter*> served;
    std::vector<Change> batch;
    uint64_t batch_seq = 0;
    Status status;
    bool commit_failed = false;
    bool latch = false;  // a sync failed: remembered in sync_error_
  };
  void Run() EXCLUDES(mu_);
  // The thread's work without the lock: sync the data, commit the batch.
  void SyncAndCommit(const Status& sync_error, Cycle* c) EXCLUDES(mu_);
  // Publishes a cycle's outcome to the flushers; releases mu_ around
  // on_durable, which takes the engine's locks.
  void Finish(Cycle* c) REQUIRES(mu_);
  void LogStateChange(const Status& s, bool commit_failed, size_t batch_size);

  MetaStore* const store_;
  const Counters* const counters_;
  const Hooks hooks_;
  const std::chrono::milliseconds interval_;

  mutable Mutex mu_;
  CondVar work_cv_;  // wakes the thread
  CondVar done_cv_;  // wakes flushers
  std::vector<Change> queue_ GUARDED_BY(mu_);
  uint64_t enqueued_seq_ GUARDED_BY(mu_) = 0;
  uint64_t durable_seq_ GUARDED_BY(mu_) = 0;
  std::vector<Waiter*> waiters_ GUARDED_BY(mu_);
  Status sync_error_ GUARDED_BY(mu_);  // sticky
  Status commit_error_ GUARDED_BY(mu_);
  // What the log last said about the cycles (thread only): 0 ok, 1 a data
  // sync failed, 2 the commit fails. Logged once per change, not per cycle.
  int logged_state_ = 0;
  // The counters as last committed (thread only): a flush commits them when
  // they changed, so that a kill -9 loses none that a flush saw.
  std::vector<std::pair<std::string, uint64_t>> committed_counters_;
  bool stop_ GUARDED_BY(mu_) = false;
  bool abandon_ GUARDED_BY(mu_) = false;  // exit without committing
  bool stopped_ GUARDED_BY(mu_) = false;  // the thread has exited
  Status final_status_ GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace remapfs
