// SlotAllocator: the state of every SPARE slot (free, used, bad, or freed but
// waiting for the commit that frees it to be durable) and the choice of the
// next slot. Slots are taken lowest-first after the last one taken, so a run
// of remaps lands in consecutive slots.
//
// Thread-safety: none; the engine guards it with the table's lock.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

namespace remapfs {

class SlotAllocator {
 public:
  explicit SlotAllocator(uint32_t slot_count);

  // At load: the slot is mapped, or known bad. REQUIRES: the slot is free.
  void MarkUsed(uint32_t slot);
  // A write to the slot failed: it is never used again. Works on any state.
  void MarkBad(uint32_t slot);

  // Takes a free slot, or nullopt when none is left.
  std::optional<uint32_t> Allocate();
  // A slot Allocate handed out but never mapped (its write failed for a
  // reason that is not the slot's): free again at once.
  void Unallocate(uint32_t slot);
  // The slot's mapping was dropped by the change numbered `seq`; the slot
  // becomes free once ReleaseDurable(>= seq) says that change is durable
  // (DESIGN.md: a freed slot is not reused before its freeing is durable).
  void Release(uint32_t slot, uint64_t seq);
  void ReleaseDurable(uint64_t durable_seq);

  uint32_t slot_count() const { return static_cast<uint32_t>(state_.size()); }
  uint32_t free_count() const { return free_; }
  uint32_t used_count() const { return used_; }
  uint32_t bad_count() const { return bad_; }
  uint32_t quarantined_count() const { return static_cast<uint32_t>(quarantine_.size()); }
  bool is_bad(uint32_t slot) const { return state_[slot] == kBad; }
  bool is_used(uint32_t slot) const { return state_[slot] == kUsed; }

 private:
  enum State : uint8_t { kFree, kUsed, kBad, kQuarantined };
  void Leave(uint32_t slot);  // drops the slot from its current state's count

  std::vector<uint8_t> state_;
  std::deque<std::pair<uint64_t, uint32_t>> quarantine_;  // (seq, slot), seq ascending
  uint32_t cursor_ = 0;
  uint32_t free_ = 0, used_ = 0, bad_ = 0;
};

}  // namespace remapfs
