#include "store/changes.h"

namespace remapfs {

std::string_view EventKindName(EventKind k) {
  switch (k) {
    case EventKind::kRemapped: return "remapped";
    case EventKind::kPending: return "pending";
    case EventKind::kUnremapped: return "unremapped";
    case EventKind::kSlotBad: return "slot-bad";
    case EventKind::kSpareExhausted: return "spare-exhausted";
  }
  return "?";
}

}  // namespace remapfs
