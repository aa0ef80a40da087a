#include "store/changes.h"

#include <chrono>

namespace remapfs {

int64_t NowUnixUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view EventKindName(EventKind k) {
  switch (k) {
    case EventKind::kRemapped: return "remapped";
    case EventKind::kPending: return "pending";
    case EventKind::kUnremapped: return "unremapped";
    case EventKind::kSlotBad: return "slot-bad";
    case EventKind::kSpareExhausted: return "spare-exhausted";
    case EventKind::kRescued: return "rescued";
  }
  return "?";
}

std::string_view ScrubRunName(ScrubState::Run run) {
  switch (run) {
    case ScrubState::Run::kIdle: return "idle";
    case ScrubState::Run::kRunning: return "running";
    case ScrubState::Run::kPaused: return "paused";
  }
  return "?";
}

std::optional<ScrubState::Run> ParseScrubRun(std::string_view name) {
  for (auto r : {ScrubState::Run::kIdle, ScrubState::Run::kRunning, ScrubState::Run::kPaused}) {
    if (name == ScrubRunName(r)) return r;
  }
  return std::nullopt;
}

}  // namespace remapfs
