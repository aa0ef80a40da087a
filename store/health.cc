#include "store/health.h"

namespace remapfs {

std::string_view CounterName(Counter c) {
  switch (c) {
    case Counter::kReads: return "reads";
    case Counter::kWrites: return "writes";
    case Counter::kBytesRead: return "bytes_read";
    case Counter::kBytesWritten: return "bytes_written";
    case Counter::kFlushes: return "flushes";
    case Counter::kFlushErrors: return "flush_errors";
    case Counter::kMainReadErrors: return "main_read_errors";
    case Counter::kMainWriteErrors: return "main_write_errors";
    case Counter::kSpareReadErrors: return "spare_read_errors";
    case Counter::kSpareWriteErrors: return "spare_write_errors";
    case Counter::kRemaps: return "remaps";
    case Counter::kUnremaps: return "unremaps";
    case Counter::kPendingMarked: return "pending_marked";
    case Counter::kReadEIO: return "read_eio";
    case Counter::kWriteEIO: return "write_eio";
    case Counter::kSpareExhausted: return "spare_exhausted";
    case Counter::kScrubBytes: return "scrub_bytes";
    case Counter::kScrubUnreadable: return "scrub_unreadable";
    case Counter::kScrubRescued: return "scrub_rescued";
    case Counter::kScrubSlotsRetired: return "scrub_slots_retired";
    case Counter::kScrubPasses: return "scrub_passes";
    case Counter::kCount: break;
  }
  return "?";
}

std::vector<std::pair<std::string, uint64_t>> Counters::Snapshot() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (size_t i = 0; i < v_.size(); ++i) {
    out.emplace_back(std::string(CounterName(static_cast<Counter>(i))), v_[i].load(std::memory_order_relaxed));
  }
  return out;
}

void Counters::Load(const std::vector<std::pair<std::string, uint64_t>>& named) {
  for (const auto& [name, value] : named) {
    for (size_t i = 0; i < v_.size(); ++i) {
      if (name == CounterName(static_cast<Counter>(i))) v_[i].store(value, std::memory_order_relaxed);
    }
  }
}

const std::vector<std::pair<HealthBit, std::string_view>>& HealthBitNames() {
  static const std::vector<std::pair<HealthBit, std::string_view>> names = {
      {kHealthDegraded, "degraded"},         {kHealthPending, "pending"},
      {kHealthSpareLow, "spare-low"},        {kHealthSpareExhausted, "spare-exhausted"},
      {kHealthStoreFailing, "store-failing"}, {kHealthUncleanStop, "unclean-stop"}};
  return names;
}

int HealthBits(const Health& h) {
  int bits = 0;
  if (h.remapped_sectors != 0 || h.pending_sectors != 0 || h.slots_bad != 0) bits |= kHealthDegraded;
  if (h.pending_sectors != 0) bits |= kHealthPending;
  if (h.SpareExhausted()) {
    bits |= kHealthSpareExhausted | kHealthSpareLow;
  } else if (h.SpareLow()) {
    bits |= kHealthSpareLow;
  }
  if (!h.sync_error.empty() || !h.store_error.empty()) bits |= kHealthStoreFailing;
  if (!h.was_clean) bits |= kHealthUncleanStop;
  return bits;
}

bool Health::SpareExhausted() const { return slots_free == 0 && slots_quarantined == 0; }
bool Health::SpareLow() const { return uint64_t{slots_free} * 10 < slots_total; }

std::string Health::State() const {
  if (!sync_error.empty()) return "sync-failed";
  if (!store_error.empty()) return "store-failing";
  if (SpareExhausted()) return "spare-exhausted";
  if (SpareLow()) return "spare-low";
  if (remapped_sectors != 0 || pending_sectors != 0 || slots_bad != 0) return "degraded";
  return "ok";
}

}  // namespace remapfs
