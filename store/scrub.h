// Scrubber: the background scan of a set, as a drive's firmware scans its
// surface instead of waiting for a read to fail. A pass reads every normal
// sector of MAIN, then the slot of every remapped sector, one engine region
// at a time (Engine::ScrubMain, ScrubSlots): an unreadable sector becomes
// pending, a marginal one (readable only after a retry, or slowly) is copied
// to a slot while it can still be read, a failing slot is retired.
//
// It reads at most `rate` bytes a second, and gives way to requests: while
// reads or writes keep coming it waits, but takes one step a second at
// least, so a pass always ends. Where the pass is goes to the DB with the
// table's commits (at least every second while it runs): after a restart or
// a kill -9 the next open resumes it from there (Launch).
//
// Thread-safety: every method may be called from any thread. The pass runs
// on a thread of its own, started by Launch and ended by Stop.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "store/changes.h"
#include "store/engine.h"
#include "store/mutex.h"
#include "store/status.h"

namespace remapfs {

// Rate limits are given in MB/s (10^6 bytes) up to this, far above any disk.
inline constexpr uint64_t kMaxScrubRateMB = 100'000;

struct ScrubOptions {
  // Bytes a second for a pass started without a rate (and a scheduled one).
  uint64_t default_rate = 50'000'000;
  // A read at least this slow is marginal.
  std::chrono::milliseconds slow{500};
  // Start a pass when the last one ended this long ago (or never ran);
  // zero: only when asked.
  std::chrono::seconds every{0};
};

class Scrubber {
 public:
  // REQUIRES: the engine outlives the scrubber (Stop it first).
  Scrubber(Engine* engine, ScrubOptions options);
  ~Scrubber();  // Stop()
  Scrubber(const Scrubber&) = delete;
  Scrubber& operator=(const Scrubber&) = delete;

  // Starts the thread, which resumes a pass the DB records as running and
  // starts scheduled ones.
  void Launch() EXCLUDES(mu_);

  // The verbs. Each refuses, with one line, what does not apply to the
  // scrub's state (InvalidArgument). rate: bytes a second, 0 for no limit;
  // nullopt: the pass's own (Resume) or the default (Start).
  Status Start(std::optional<uint64_t> rate) EXCLUDES(mu_);  // a new pass, from sector 0
  Status Pause() EXCLUDES(mu_);
  Status Resume(std::optional<uint64_t> rate) EXCLUDES(mu_);
  Status Cancel() EXCLUDES(mu_);  // `scrub stop`: the pass ends where it is
  ScrubStatus GetStatus() const EXCLUDES(mu_);

  // Shutdown step 2: ends the thread within one read, and saves where the
  // pass is (a running pass resumes at the next open). Idempotent.
  void Stop() EXCLUDES(mu_);

  // A pass's size for the scrub's state in a DB (offline status).
  static ScrubStatus StatusOf(const ScrubState& state, uint64_t sector_count, uint32_t sector_size,
                              uint64_t slots_used);

 private:
  // One step of a pass: [first, end) of MAIN, or the slots of the remapped
  // sectors in it; done when the pass has nothing left.
  struct Step {
    bool done = false;
    bool main = true;
    uint64_t first = 0, end = 0;
  };
  Step NextStep() const REQUIRES(mu_);
  void Run() EXCLUDES(mu_);
  // Waits until `deadline`, or a verb or Stop changed something. False when
  // the wait was cut short.
  bool Sleep(std::chrono::steady_clock::time_point deadline) REQUIRES(mu_);
  // Queues the state for the DB if it changed since last saved; pass_done:
  // a pass ended (counted).
  void Save(bool pass_done = false) REQUIRES(mu_);
  // After a verb (or Stop) changed the state: saves it, makes a step under
  // way give up, and wakes the thread.
  void Changed() REQUIRES(mu_);
  void BeginPass(uint64_t rate) REQUIRES(mu_);

  Engine* const engine_;
  const ScrubOptions options_;
  mutable Mutex mu_;
  CondVar cv_;
  ScrubState state_ GUARDED_BY(mu_);
  ScrubState saved_ GUARDED_BY(mu_);
  std::string error_ GUARDED_BY(mu_);
  uint64_t spare_bytes_ GUARDED_BY(mu_) = 0;  // slots read in this pass, this run
  // (time, bytes read so far) at each step of the last seconds: the rate.
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> samples_ GUARDED_BY(mu_);
  uint64_t read_bytes_ GUARDED_BY(mu_) = 0;
  uint64_t changes_ GUARDED_BY(mu_) = 0;  // bumped by each verb: wakes Sleep
  bool stopping_ GUARDED_BY(mu_) = false;
  // Set by Pause, Cancel and Stop: a step under way gives up between reads.
  std::atomic<bool> abort_step_{false};
  std::thread thread_;
};

}  // namespace remapfs
