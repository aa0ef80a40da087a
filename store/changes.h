// The table changes and events that the engine queues for the metadata
// writer, which applies them to the DB in order, in one transaction a batch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "store/fault.h"

namespace remapfs {

enum class EventKind : uint8_t {
  kRemapped,        // a sector now lives in a slot
  kPending,         // a sector became unreadable
  kUnremapped,      // a sector is served from MAIN again
  kSlotBad,         // a write to a slot failed
  kSpareExhausted,  // a remap found no free slot
};
std::string_view EventKindName(EventKind k);

struct Event {
  int64_t time_us = 0;  // wall clock, microseconds since the epoch
  EventKind kind = EventKind::kRemapped;
  uint64_t sector = 0;
  int64_t slot = -1;    // -1: none
  std::string detail;
};

struct PutSector {
  uint64_t sector;
  uint32_t slot;  // kPendingSlot: pending
};
struct EraseSector {
  uint64_t sector;
};
struct PutBadSlot {
  uint32_t slot;
};
struct PutFaultRule {
  FaultRule rule;
};
struct EraseFaultRule {
  // The row's id (a damaged row's may be 0 or negative); none: every rule.
  std::optional<int64_t> id;
};

using Change = std::variant<PutSector, EraseSector, PutBadSlot, PutFaultRule, EraseFaultRule, Event>;

}  // namespace remapfs
