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
  kRescued,         // the scrub moved a marginal sector (or slot) to a new slot
};
std::string_view EventKindName(EventKind k);

// The wall clock in microseconds since the epoch: the unit of every time
// the DB, the status and the events hold.
int64_t NowUnixUs();

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

// Where the scrub is (scrub.h), as the DB keeps it for the next open.
struct ScrubState {
  enum class Run : uint8_t { kIdle, kRunning, kPaused };
  Run run = Run::kIdle;
  // The pass's next step: MAIN's sector `position` while position < the
  // set's sector count; from there on, the slot of the first remapped sector
  // >= position - sector count.
  uint64_t position = 0;
  uint64_t rate = 0;             // bytes a second; 0: no limit
  int64_t pass_started_us = 0;   // wall clock; 0: no pass under way
  int64_t last_pass_us = 0;      // when the last full pass ended; 0: never
  bool operator==(const ScrubState&) const = default;
};
std::string_view ScrubRunName(ScrubState::Run run);  // "idle", "running", "paused"
std::optional<ScrubState::Run> ParseScrubRun(std::string_view name);
struct PutScrubState {
  ScrubState state;
};

using Change = std::variant<PutSector, EraseSector, PutBadSlot, PutFaultRule, EraseFaultRule, Event, PutScrubState>;

}  // namespace remapfs
