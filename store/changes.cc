#include "store/changes.h"

namespace remapfs {

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
