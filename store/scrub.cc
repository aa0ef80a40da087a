#include "store/scrub.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace remapfs {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kSaveEvery = std::chrono::seconds(1);
// Giving way to requests: look again this often, for this long at most.
constexpr auto kYieldStep = std::chrono::milliseconds(20);
constexpr auto kMaxYield = std::chrono::seconds(1);
constexpr auto kRateWindow = std::chrono::seconds(5);
// A schedule is looked at again at least this often (the wall clock may jump).
constexpr auto kScheduleLook = std::chrono::minutes(10);

}  // namespace

Scrubber::Scrubber(Engine* engine, ScrubOptions options) : engine_(engine), options_(options) {
  MutexLock lock(&mu_);
  state_ = engine->saved_scrub_state();
  saved_ = state_;
}

Scrubber::~Scrubber() { Stop(); }

ScrubStatus Scrubber::StatusOf(const ScrubState& state, uint64_t sector_count, uint32_t sector_size,
                               uint64_t slots_used) {
  ScrubStatus st;
  st.state = state;
  st.in_spare = state.position >= sector_count;
  st.total_bytes = (sector_count + slots_used) * sector_size;
  st.done_bytes = state.run == ScrubState::Run::kIdle ? 0 : std::min(state.position, sector_count) * sector_size;
  return st;
}

ScrubStatus Scrubber::GetStatus() const {
  const uint64_t used = engine_->slots_used();
  MutexLock lock(&mu_);
  ScrubStatus st = StatusOf(state_, engine_->sector_count(), engine_->sector_size(), used);
  st.done_bytes = std::min(st.total_bytes, st.done_bytes + (st.in_spare ? spare_bytes_ : 0));
  st.error = error_;
  if (state_.run == ScrubState::Run::kRunning && samples_.size() >= 2) {
    const double seconds = std::chrono::duration<double>(samples_.back().first - samples_.front().first).count();
    if (seconds > 0) st.bytes_per_second = static_cast<double>(samples_.back().second - samples_.front().second) / seconds;
  }
  return st;
}

void Scrubber::Launch() {
  MutexLock lock(&mu_);
  if (thread_.joinable() || stopping_) return;
  if (state_.run == ScrubState::Run::kRunning) {
    spdlog::info("scrub: resuming the pass at sector {} of {}", std::min(state_.position, engine_->sector_count()),
                 engine_->sector_count());
  }
  thread_ = std::thread([this] { Run(); });
}

Status Scrubber::Start(std::optional<uint64_t> rate) {
  MutexLock lock(&mu_);
  if (stopping_) return Status::InvalidArgument("the daemon is stopping");
  if (state_.run != ScrubState::Run::kIdle) {
    return Status::InvalidArgument(std::string("a scrub is ") + std::string(ScrubRunName(state_.run)) +
                                   " already; `remapctl scrub stop` ends it" +
                                   (state_.run == ScrubState::Run::kPaused ? ", `remapctl scrub resume` goes on" : ""));
  }
  BeginPass(rate.value_or(options_.default_rate));
  spdlog::info("scrub: a pass begins ({})", state_.rate ? std::to_string(state_.rate) + " bytes/s at most" : "no rate limit");
  return Status::OK();
}

Status Scrubber::Pause() {
  MutexLock lock(&mu_);
  if (state_.run != ScrubState::Run::kRunning) return Status::InvalidArgument("no scrub is running");
  state_.run = ScrubState::Run::kPaused;
  Changed();
  spdlog::info("scrub: paused at sector {}", state_.position);
  return Status::OK();
}

Status Scrubber::Resume(std::optional<uint64_t> rate) {
  MutexLock lock(&mu_);
  if (stopping_) return Status::InvalidArgument("the daemon is stopping");
  if (state_.run == ScrubState::Run::kRunning) return Status::InvalidArgument("the scrub is running already");
  if (state_.run == ScrubState::Run::kIdle) {
    return Status::InvalidArgument("no scrub is paused; `remapctl scrub start` begins a pass");
  }
  state_.run = ScrubState::Run::kRunning;
  if (rate) state_.rate = *rate;
  error_.clear();
  Changed();
  spdlog::info("scrub: resumed at sector {}", state_.position);
  return Status::OK();
}

Status Scrubber::Cancel() {
  MutexLock lock(&mu_);
  if (state_.run == ScrubState::Run::kIdle) return Status::InvalidArgument("no scrub is running or paused");
  spdlog::info("scrub: stopped at sector {}; the pass is abandoned", state_.position);
  state_.run = ScrubState::Run::kIdle;
  state_.position = 0;
  state_.pass_started_us = 0;
  error_.clear();
  Changed();
  return Status::OK();
}

void Scrubber::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    Changed();
  }
  if (thread_.joinable()) thread_.join();
}

void Scrubber::BeginPass(uint64_t rate) {
  state_.run = ScrubState::Run::kRunning;
  state_.position = 0;
  state_.rate = rate;
  state_.pass_started_us = NowUnixUs();
  spare_bytes_ = 0;
  error_.clear();
  Changed();
}

void Scrubber::Changed() {
  ++changes_;
  abort_step_.store(true, std::memory_order_relaxed);
  Save();
  cv_.SignalAll();
}

void Scrubber::Save(bool pass_done) {
  if (state_ == saved_ && !pass_done) return;
  engine_->SaveScrubState(state_, pass_done);
  saved_ = state_;
}

bool Scrubber::Sleep(Clock::time_point deadline) {
  const uint64_t seen = changes_;
  while (!stopping_ && changes_ == seen) {
    if (deadline == Clock::time_point::max()) {
      cv_.Wait(mu_);
    } else if (!cv_.WaitUntil(mu_, deadline)) {
      return true;
    }
  }
  return false;
}

Scrubber::Step Scrubber::NextStep() const {
  const uint64_t n = engine_->sector_count();
  const uint64_t per = std::max<uint64_t>(1, (uint64_t{1} << Engine::kRegionShift) / engine_->sector_size());
  Step step;
  uint64_t first = state_.position;
  if (first >= n) {
    const std::optional<uint64_t> next = engine_->NextRemapped(first - n);
    if (!next) return Step{.done = true};
    first = *next;
    step.main = false;
  }
  step.first = first;
  step.end = std::min(n, (first / per + 1) * per);
  return step;
}

void Scrubber::Run() {
  MutexLock lock(&mu_);
  const uint64_t n = engine_->sector_count();
  auto last_save = Clock::now();
  auto next_step = Clock::now();  // the rate's: when the next step may begin
  uint64_t seen_requests = engine_->requests();
  uint64_t paced = changes_;  // the verbs next_step was paced after
  while (!stopping_) {
    if (state_.run != ScrubState::Run::kRunning) {
      samples_.clear();
      if (options_.every.count() > 0 && state_.run == ScrubState::Run::kIdle) {
        const int64_t wait_us =
            state_.last_pass_us + std::chrono::duration_cast<std::chrono::microseconds>(options_.every).count() -
            NowUnixUs();
        if (state_.last_pass_us == 0 || wait_us <= 0) {
          BeginPass(options_.default_rate);
          spdlog::info("scrub: a scheduled pass begins");
          continue;
        }
        Sleep(Clock::now() + std::min<std::chrono::microseconds>(std::chrono::microseconds(wait_us), kScheduleLook));
      } else {
        Sleep(Clock::time_point::max());
      }
      next_step = Clock::now();
      continue;
    }
    const Step step = NextStep();
    if (step.done) {
      state_.run = ScrubState::Run::kIdle;
      state_.position = 0;
      const double minutes = static_cast<double>(NowUnixUs() - state_.pass_started_us) / 60e6;
      state_.pass_started_us = 0;
      state_.last_pass_us = NowUnixUs();
      Save(/*pass_done=*/true);
      spdlog::info("scrub: pass complete in {:.1f} min", minutes);
      continue;
    }
    // Give way to requests: wait while they keep coming, a second at most.
    const auto yield_end = Clock::now() + kMaxYield;
    bool interrupted = false;
    for (uint64_t r; !interrupted && (r = engine_->requests()) != seen_requests && Clock::now() < yield_end;) {
      seen_requests = r;
      interrupted = !Sleep(Clock::now() + kYieldStep);
    }
    // A verb (a new rate, a pause and resume) restarts the pacing.
    if (paced != changes_) {
      paced = changes_;
      next_step = Clock::now();
    }
    if (interrupted || (next_step > Clock::now() && !Sleep(next_step))) continue;
    const uint64_t generation = changes_;
    abort_step_.store(false, std::memory_order_relaxed);  // a verb after this sets it again
    lock.Unlock();
    const Engine::ScrubCheck check{options_.slow, &abort_step_};
    uint64_t bytes = 0;
    bool finished = false;
    const Status s = step.main ? engine_->ScrubMain(step.first, step.end, check, &bytes, &finished)
                               : engine_->ScrubSlots(step.first, step.end, check, &bytes, &finished);
    lock.Lock();
    const auto now = Clock::now();
    read_bytes_ += bytes;
    samples_.emplace_back(now, read_bytes_);
    while (now - samples_.front().first > kRateWindow) samples_.pop_front();
    if (state_.rate > 0) {
      next_step = std::max(next_step, now) + std::chrono::nanoseconds(static_cast<int64_t>(
                                                 static_cast<double>(bytes) * 1e9 / static_cast<double>(state_.rate)));
    }
    if (!s.ok()) {
      // The store cannot record what the scrub finds (or the host failed
      // it): no reason to read on. `scrub resume` tries again.
      error_ = s.ToString();
      state_.run = ScrubState::Run::kPaused;
      Changed();
      spdlog::error("scrub: paused at sector {}: {}", state_.position, error_);
      continue;
    }
    // Given up for a verb or Stop, or the pass changed meanwhile: not this
    // step's position to move.
    if (!finished || generation != changes_) continue;
    if (!step.main) spare_bytes_ += bytes;
    state_.position = step.main ? step.end : n + step.end;
    if (now - last_save >= kSaveEvery) {
      Save();
      last_save = now;
    }
  }
  Save();
}

}  // namespace remapfs
