#include "store/metadata_writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>

namespace remapfs {

MetaWriter::MetaWriter(MetaStore* store, const Counters* counters, Hooks hooks,
                       std::chrono::milliseconds interval)
    : store_(store), counters_(counters), hooks_(std::move(hooks)), interval_(interval) {
  thread_ = std::thread([this] { Run(); });
}

MetaWriter::~MetaWriter() { Stop(); }

uint64_t MetaWriter::Enqueue(Change change) {
  MutexLock lock(&mu_);
  queue_.push_back(std::move(change));
  return ++enqueued_seq_;
}

Status MetaWriter::Flush() {
  MutexLock lock(&mu_);
  if (stopped_) return Status::IOError("the metadata writer has stopped", EIO);
  Waiter w;
  waiters_.push_back(&w);
  work_cv_.Signal();
  while (!w.done) done_cv_.Wait(mu_);
  return w.status;
}

uint64_t MetaWriter::durable_seq() const {
  MutexLock lock(&mu_);
  return durable_seq_;
}

Status MetaWriter::sync_error() const {
  MutexLock lock(&mu_);
  return sync_error_;
}

void MetaWriter::NoteSyncFailure(const Status& s) {
  MutexLock lock(&mu_);
  if (sync_error_.ok()) sync_error_ = s;
}

Status MetaWriter::commit_error() const {
  MutexLock lock(&mu_);
  return commit_error_;
}

Status MetaWriter::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  work_cv_.Signal();
  if (thread_.joinable()) thread_.join();
  MutexLock lock(&mu_);
  return final_status_;
}

void MetaWriter::Abandon() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    abandon_ = true;
  }
  work_cv_.Signal();
  if (thread_.joinable()) thread_.join();
}

void MetaWriter::LogStateChange(const Status& s, bool commit_failed, size_t batch_size) {
  const int state = s.ok() ? 0 : commit_failed ? 2 : 1;
  if (state == logged_state_) return;
  if (state == 2) {
    spdlog::error("{}; {} table change(s) wait; flushes fail with EIO and writes that need a new remap are "
                  "refused until a commit succeeds (retried every {} ms and on every flush)",
                  s.message(), batch_size, interval_.count());
  } else if (state == 1) {
    spdlog::error("a sync failed: {}; what was written since the last good sync may be lost: every flush "
                  "fails and no table change is committed from now on; {} change(s) wait. Stop and remount "
                  "the set: it then checks itself and goes on from its last commit",
                  s.message(), batch_size);
  } else {
    spdlog::warn("the metadata writer commits again");
  }
  logged_state_ = state;
}

void MetaWriter::Run() {
  MutexLock lock(&mu_);
  for (;;) {
    // Sleep until a flush is asked for, stop is asked for, or the interval
    // passes with changes queued.
    const auto deadline = std::chrono::steady_clock::now() + interval_;
    while (!stop_ && waiters_.empty() && work_cv_.WaitUntil(mu_, deadline)) {
    }
    if (abandon_) break;  // a simulated crash: commit nothing more
    Cycle cycle;
    cycle.stopping = stop_;
    cycle.retry = !commit_error_.ok();
    // The stopping cycle always commits, so that the counters changed since
    // the last commit (reads, bytes, flushes) survive an orderly stop.
    // A failed commit is retried every interval even when it held nothing but
    // counters, so that the store's failing state ends once it can.
    if (waiters_.empty() && queue_.empty() && !cycle.retry && !cycle.stopping) continue;
    // Everything queued and every flusher registered so far is served by this
    // cycle; the data they wrote was written before they got here, so the
    // sync below covers it.
    cycle.served.swap(waiters_);
    cycle.batch.swap(queue_);
    cycle.batch_seq = enqueued_seq_;
    const Status sync_error = sync_error_;
    lock.Unlock();
    SyncAndCommit(sync_error, &cycle);
    lock.Lock();
    Finish(&cycle);
    // One stopping cycle is the last: it read enqueued_seq_ after Stop set
    // stop_, so it covered everything queued before Stop. Looping while the
    // queue is non-empty would never end if someone keeps enqueueing.
    if (cycle.stopping) {
      final_status_ = cycle.status;
      break;
    }
  }
  stopped_ = true;
  // Flushers that arrived after the last cycle get an error, not a hang.
  for (Waiter* w : waiters_) {
    w->done = true;
    w->status = Status::IOError("the metadata writer has stopped", EIO);
  }
  waiters_.clear();
  done_cv_.SignalAll();
}

void MetaWriter::SyncAndCommit(const Status& sync_error, Cycle* c) {
  // After a failed data sync nothing is synced or committed any more: a
  // sync that succeeds now says nothing of the pages the failed one lost.
  Status s = sync_error.ok() ? hooks_.sync_data() : sync_error;
  const bool sync_failed = !s.ok();
  auto counters = counters_->Snapshot();
  const bool counters_changed = !c->served.empty() && counters != committed_counters_;
  if (s.ok() && (!c->batch.empty() || c->stopping || counters_changed || c->retry)) {
    s = store_->Apply(c->batch, counters);
    if (s.ok()) {
      committed_counters_ = std::move(counters);
    } else {
      // Disk full or an I/O error of the DB: whatever SQLite said, the
      // flusher's fsync fails with EIO (DESIGN.md: a media error).
      c->commit_failed = true;
      s = Status::IOError("the metadata store cannot commit: " + s.message(), EIO);
    }
  }
  // A failed sync of the DB's own files is remembered the same way.
  c->latch = sync_failed || (c->commit_failed && store_->sync_failed());
  LogStateChange(s, c->commit_failed && !c->latch, c->batch.size());
  c->status = s;
}

void MetaWriter::Finish(Cycle* c) {
  const Status& s = c->status;
  if (c->latch && sync_error_.ok()) sync_error_ = s;
  if (s.ok()) {
    durable_seq_ = c->batch_seq;
    commit_error_ = Status::OK();
  } else {
    if (c->commit_failed) commit_error_ = s;
    // Keep the batch, in order, ahead of anything queued meanwhile: the next
    // cycle retries it.
    c->batch.insert(c->batch.end(), std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
    queue_.swap(c->batch);
  }
  for (Waiter* w : c->served) {
    w->done = true;
    w->status = s;
  }
  if (s.ok() && hooks_.on_durable) {
    mu_.Unlock();
    hooks_.on_durable(c->batch_seq);
    mu_.Lock();
  }
  done_cv_.SignalAll();
}

}  // namespace remapfs
