// Counters for every event of the engine, and the Health snapshot that
// `remapctl status` shows. Counters are lifetime totals: loaded from the DB
// at open and saved with every commit.
//
// Thread-safety: Counters may be bumped and read from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/changes.h"

namespace remapfs {

enum class Counter : uint8_t {
  kReads,             // read requests
  kWrites,            // write requests
  kBytesRead,
  kBytesWritten,
  kFlushes,
  kFlushErrors,       // flushes that failed (sync or commit)
  kMainReadErrors,    // failed reads of MAIN, before retries
  kMainWriteErrors,   // failed writes of MAIN, before isolation
  kSpareReadErrors,
  kSpareWriteErrors,  // each one made a slot bad
  kRemaps,            // sectors moved to a slot (write failure or manual)
  kUnremaps,
  kPendingMarked,     // sectors that became pending
  kReadEIO,           // read requests answered with EIO
  kWriteEIO,          // write requests answered with EIO
  kSpareExhausted,    // remaps refused because no slot was free
  kScrubBytes,        // bytes the scrub read (MAIN and slots)
  kScrubUnreadable,   // sectors the scrub found unreadable (now pending)
  kScrubRescued,      // marginal sectors the scrub moved to a new slot
  kScrubSlotsRetired, // slots the scrub found failing (now bad)
  kScrubPasses,       // full passes completed
  kCount
};

std::string_view CounterName(Counter c);

class Counters {
 public:
  void Add(Counter c, uint64_t n = 1) { v_[Index(c)].fetch_add(n, std::memory_order_relaxed); }
  uint64_t Get(Counter c) const { return v_[Index(c)].load(std::memory_order_relaxed); }
  // (name, value) of every counter, in enum order.
  std::vector<std::pair<std::string, uint64_t>> Snapshot() const;
  // Sets the counters that `named` names (a Snapshot, as the DB keeps it);
  // other names are ignored.
  void Load(const std::vector<std::pair<std::string, uint64_t>>& named);

 private:
  static size_t Index(Counter c) { return static_cast<size_t>(c); }
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Counter::kCount)> v_{};
};

struct Health {
  std::vector<std::pair<std::string, uint64_t>> counters;
  uint64_t remapped_sectors = 0;
  uint64_t pending_sectors = 0;
  uint32_t slots_total = 0, slots_free = 0, slots_used = 0, slots_bad = 0;
  uint32_t slots_quarantined = 0;  // freed, waiting for a durable commit
  size_t table_bytes = 0;
  bool was_clean = true;            // the last stop was orderly
  std::string store_error;          // the last failed commit, if any
  // The failed data sync of MAIN or SPARE that stopped every flush and commit
  // of this run (MetaWriter::sync_error), if any.
  std::string sync_error;
  // The commit failure the previous run recorded when it could not stop in
  // order (set_info.last_error): the open checked the set; shown for this run.
  std::string previous_store_error;
  // The worst that applies: "sync-failed" (a data sync failed: data may be
  // lost, restart the set), "store-failing" (the last commit failed),
  // "spare-exhausted", "spare-low" (< 10% of the slots free), "degraded"
  // (MAIN has remapped or pending sectors, or SPARE has bad slots), "ok".
  std::string State() const;
  // No slot is free nor will be (none waits in quarantine).
  bool SpareExhausted() const;
  // Under a tenth of the slots free.
  bool SpareLow() const;
};

// `remapctl health`: a bit for each condition that holds, as smartctl's
// exit status has; 0 when none does. Bits 0 and 1 stay remapctl's own exit
// codes (1: it failed, 2: a usage error), so a script tells "could not
// tell" from any condition.
enum HealthBit : int {
  kHealthDegraded = 1 << 2,        // remapped or pending sectors, or bad slots
  kHealthPending = 1 << 3,         // pending sectors: data lost until written
  kHealthSpareLow = 1 << 4,        // under a tenth of the slots free
  kHealthSpareExhausted = 1 << 5,  // no slot free
  kHealthStoreFailing = 1 << 6,    // a commit or a data sync failed
  kHealthUncleanStop = 1 << 7,     // the last stop was not orderly
};
// Every bit, in order, with its name ("degraded", "pending", "spare-low",
// "spare-exhausted", "store-failing", "unclean-stop").
const std::vector<std::pair<HealthBit, std::string_view>>& HealthBitNames();
int HealthBits(const Health& h);

// Where the scrub (scrub.h) is: `remapctl scrub status`.
struct ScrubStatus {
  ScrubState state;
  uint64_t done_bytes = 0;      // of the pass so far
  uint64_t total_bytes = 0;     // of a pass: MAIN's size and the slots in use
  double bytes_per_second = 0;  // over the last seconds, while running
  std::string error;            // why the scrub paused itself; empty: it did not
  bool in_spare = false;        // the pass reads slots now (MAIN is done)
};

// Where a set's parts are and, while it is mounted, the daemon that serves
// it: as the daemon opened them, or offline where the DB says they were
// last opened (no daemon: pid 0, mountpoint empty).
struct SetPlace {
  std::string main, spare, db;
  std::string mountpoint;
  int64_t pid = 0;
  int64_t started_us = 0;  // when the daemon started, Unix time
};

// What `remapctl status` reports: the set's identity, its Health and scrub.
struct SetStatus {
  std::string uuid;
  uint32_t sector_size = 0;
  uint64_t size = 0;  // MAIN's (and the exposed file's) bytes
  Health health;
  ScrubStatus scrub{};
  SetPlace place;
};

}  // namespace remapfs
