// SlotAllocator: the state of every SPARE slot (free, used, bad, or freed but
// waiting for the commit that frees it to be durable) and the choice of the
// next slot. Slots are taken lowest-first after the last one taken, so a run
// of remaps lands in consecutive slots.
//
// Memory follows the slots in use, not the size of SPARE (a spare may hold
// 2^32 - 1 slots): a slot is free unless its chunk of kChunkSlots says
// otherwise, and a chunk exists only while one of its slots is taken (used,
// bad or quarantined). Above the highest chunk every slot is free by
// construction. A chunk is a bitmap (kChunkSlots / 8 bytes); bad and
// quarantined slots are also kept by number, to tell them from used ones.
// So the cost is at most 1 bit per slot up to the highest taken one plus a
// pointer per chunk below it, and for the usual dense use from slot 0 up
// about 1 bit per slot in use.
//
// Thread-safety: none; the engine guards it with the table's lock.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_set>
#include <utility>
#include <vector>

namespace remapfs {

class SlotAllocator {
 public:
  static constexpr uint32_t kChunkShift = 16;
  static constexpr uint32_t kChunkSlots = uint32_t{1} << kChunkShift;

  explicit SlotAllocator(uint32_t slot_count);

  // At load: the slot is mapped. REQUIRES: the slot is free.
  void MarkUsed(uint32_t slot);
  // A write to the slot failed: it is never used again. Works on any state.
  void MarkBad(uint32_t slot);

  // Takes a free slot, or nullopt when none is left.
  std::optional<uint32_t> Allocate();
  // A slot Allocate handed out but never mapped (its write failed for a
  // reason that is not the slot's): free again at once. REQUIRES: the slot
  // is used.
  void Unallocate(uint32_t slot);
  // The slot's mapping was dropped by the change numbered `seq` (numbers
  // only grow); the slot becomes free once ReleaseDurable(>= seq) says that
  // change is durable (DESIGN.md: a freed slot is not reused before its
  // freeing is durable). REQUIRES: the slot is used.
  void Release(uint32_t slot, uint64_t seq);
  void ReleaseDurable(uint64_t durable_seq);

  uint32_t slot_count() const { return slot_count_; }
  uint32_t free_count() const { return slot_count_ - used_ - bad_count() - quarantined_count(); }
  uint32_t used_count() const { return used_; }
  uint32_t bad_count() const { return static_cast<uint32_t>(bad_.size()); }
  uint32_t quarantined_count() const { return static_cast<uint32_t>(quarantined_.size()); }
  bool is_bad(uint32_t slot) const { return bad_.count(slot) != 0; }
  bool is_used(uint32_t slot) const { return IsTaken(slot) && !is_bad(slot) && quarantined_.count(slot) == 0; }

  // An estimate of the heap this allocator holds (chunks, their index, the
  // sets of bad and quarantined slots).
  size_t MemoryBytes() const;

 private:
  struct Chunk {
    uint32_t taken = 0;  // bits set
    std::array<uint64_t, kChunkSlots / 64> bits{};
  };

  bool IsTaken(uint32_t slot) const;
  void Take(uint32_t slot);  // REQUIRES: !IsTaken(slot)
  void Free(uint32_t slot);  // REQUIRES: IsTaken(slot); drops a chunk left empty
  // The lowest free slot >= from, or nullopt.
  std::optional<uint32_t> FirstFreeFrom(uint32_t from) const;
  // The lowest clear bit of chunk c at or after slot `from` (in the chunk).
  std::optional<uint32_t> FirstClearInChunk(uint32_t c, uint32_t from) const;

  const uint32_t slot_count_;
  // Index c covers slots [c * kChunkSlots, (c + 1) * kChunkSlots); nullptr:
  // all free. Ends at the highest chunk with a taken slot.
  std::vector<std::unique_ptr<Chunk>> chunks_;
  std::unordered_set<uint32_t> bad_;
  std::unordered_set<uint32_t> quarantined_;
  // (seq, slot) in Release order, so seq ascending. A slot that went bad
  // while quarantined stays here and is skipped when its turn comes.
  std::deque<std::pair<uint64_t, uint32_t>> quarantine_order_;
  uint32_t cursor_ = 0;
  uint32_t used_ = 0;
};

}  // namespace remapfs
