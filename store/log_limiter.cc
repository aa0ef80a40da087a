#include "store/log_limiter.h"

#include <algorithm>

namespace remapfs {

LogLimiter::LogLimiter(std::string noun, std::string verb, spdlog::level::level_enum level, Options options)
    : noun_(std::move(noun)), verb_(std::move(verb)), level_(level), options_(std::move(options)) {}

bool LogLimiter::Admit(uint64_t item) {
  std::optional<std::string> summary;
  bool admit = false;
  {
    MutexLock lock(&mu_);
    const Clock::time_point now = Now();
    if (open_ && now - start_ >= options_.interval) summary = Close();
    if (!open_) {
      open_ = true;
      start_ = now;
    }
    if (admitted_ < options_.burst) {
      ++admitted_;
      admit = true;
    } else {
      lowest_ = counted_ == 0 ? item : std::min(lowest_, item);
      highest_ = counted_ == 0 ? item : std::max(highest_, item);
      ++counted_;
      last_ = now;
    }
  }
  Log(summary);  // the closed interval's summary comes before this event's line
  return admit;
}

void LogLimiter::Tick() {
  std::optional<std::string> summary;
  {
    MutexLock lock(&mu_);
    if (open_ && Now() - start_ >= options_.interval) summary = Close();
  }
  Log(summary);
}

void LogLimiter::Flush() {
  std::optional<std::string> summary;
  {
    MutexLock lock(&mu_);
    summary = Close();
  }
  Log(summary);
}

std::optional<std::string> LogLimiter::Close() {
  std::optional<std::string> line;
  if (counted_ != 0) {
    const double seconds = std::chrono::duration<double>(last_ - start_).count();
    const std::string items = counted_ == 1 ? noun_ : noun_ + "s";
    const std::string range = lowest_ == highest_ ? noun_ + " " + std::to_string(lowest_)
                                                  : noun_ + "s " + std::to_string(lowest_) + " to " +
                                                        std::to_string(highest_);
    line = fmt::format("{} more {} {} in {:.1f} s ({}); `remapctl events` lists each", counted_, items, verb_,
                       seconds, range);
  }
  open_ = false;
  admitted_ = 0;
  counted_ = 0;
  return line;
}

void LogLimiter::Log(const std::optional<std::string>& line) const {
  if (line) spdlog::log(level_, "{}", *line);
}

}  // namespace remapfs
