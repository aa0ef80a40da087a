// LogLimiter: bounds the log lines of one kind of per-item event (a sector
// remapped, a sector pending, a spare slot gone bad), so that a storm of
// them costs I/O, not logging. Of each interval's events the first `burst`
// are logged one by one (Admit says so; the caller logs its own line); the
// rest are counted into one summary line for the interval, with the lowest
// and the highest item. The DB's events table still holds every event.
//
// An interval opens at the first event after the last one closed. Its
// summary is logged by the first Admit or Tick after it ends, or by Flush;
// the owner calls Flush as it stops, so no count is dropped silently.
//
// Thread-safety: thread-safe. The lines are logged without the lock held.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "store/mutex.h"

namespace remapfs {

class LogLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    uint64_t burst = 10;                      // events logged one by one per interval
    Clock::duration interval = std::chrono::seconds(10);
    std::function<Clock::time_point()> now;   // tests inject a clock; empty: Clock::now
  };

  // The summary reads "<n> more <noun>s <verb> in <t> s (<noun>s <lo> to
  // <hi>); `remapctl events` lists each", e.g. noun "sector", verb "remapped".
  LogLimiter(std::string noun, std::string verb, spdlog::level::level_enum level, Options options);
  LogLimiter(std::string noun, std::string verb, spdlog::level::level_enum level)
      : LogLimiter(std::move(noun), std::move(verb), level, Options{}) {}

  // One event about `item`. True: the caller logs its line now; false: it
  // is counted for the interval's summary.
  bool Admit(uint64_t item) EXCLUDES(mu_);
  // Logs the summary of an interval that has ended.
  void Tick() EXCLUDES(mu_);
  // Logs the summary of the current interval now, and closes it.
  void Flush() EXCLUDES(mu_);

 private:
  // The summary line of the open interval, if it counted anything; closes it.
  std::optional<std::string> Close() REQUIRES(mu_);
  Clock::time_point Now() const { return options_.now ? options_.now() : Clock::now(); }
  void Log(const std::optional<std::string>& line) const;

  const std::string noun_;
  const std::string verb_;
  const spdlog::level::level_enum level_;
  const Options options_;

  Mutex mu_;
  bool open_ GUARDED_BY(mu_) = false;
  Clock::time_point start_ GUARDED_BY(mu_);  // of the open interval
  Clock::time_point last_ GUARDED_BY(mu_);   // the last counted event
  uint64_t admitted_ GUARDED_BY(mu_) = 0;
  uint64_t counted_ GUARDED_BY(mu_) = 0;
  uint64_t lowest_ GUARDED_BY(mu_) = 0;
  uint64_t highest_ GUARDED_BY(mu_) = 0;
};

}  // namespace remapfs
