#include "store/slot_allocator.h"

#include <algorithm>
#include <bit>

namespace remapfs {

SlotAllocator::SlotAllocator(uint32_t slot_count) : slot_count_(slot_count) {}

bool SlotAllocator::IsTaken(uint32_t slot) const {
  const uint32_t c = slot >> kChunkShift;
  if (c >= chunks_.size() || !chunks_[c]) return false;
  const uint32_t i = slot & (kChunkSlots - 1);
  return (chunks_[c]->bits[i / 64] >> (i % 64)) & 1;
}

void SlotAllocator::Take(uint32_t slot) {
  const uint32_t c = slot >> kChunkShift;
  if (c >= chunks_.size()) chunks_.resize(c + 1);
  if (!chunks_[c]) chunks_[c] = std::make_unique<Chunk>();
  const uint32_t i = slot & (kChunkSlots - 1);
  chunks_[c]->bits[i / 64] |= uint64_t{1} << (i % 64);
  ++chunks_[c]->taken;
}

void SlotAllocator::Free(uint32_t slot) {
  const uint32_t c = slot >> kChunkShift;
  const uint32_t i = slot & (kChunkSlots - 1);
  chunks_[c]->bits[i / 64] &= ~(uint64_t{1} << (i % 64));
  if (--chunks_[c]->taken != 0) return;
  chunks_[c].reset();
  while (!chunks_.empty() && !chunks_.back()) chunks_.pop_back();
}

std::optional<uint32_t> SlotAllocator::FirstClearInChunk(uint32_t c, uint32_t from) const {
  const Chunk& chunk = *chunks_[c];
  const uint32_t base = c << kChunkShift;
  const uint32_t first = from - base;
  for (uint32_t w = first / 64; w < chunk.bits.size(); ++w) {
    uint64_t taken = chunk.bits[w];
    if (w == first / 64) taken |= (uint64_t{1} << (first % 64)) - 1;  // bits below `from`
    if (taken != ~uint64_t{0}) {
      const uint64_t slot = uint64_t{base} + w * 64 + static_cast<uint32_t>(std::countr_one(taken));
      if (slot >= slot_count_) return std::nullopt;  // the last chunk's tail
      return static_cast<uint32_t>(slot);
    }
  }
  return std::nullopt;
}

std::optional<uint32_t> SlotAllocator::FirstFreeFrom(uint32_t from) const {
  for (uint64_t c = from >> kChunkShift; c < chunks_.size(); ++c) {
    const uint32_t start = std::max(from, static_cast<uint32_t>(c << kChunkShift));
    if (!chunks_[c]) return start;
    if (chunks_[c]->taken == kChunkSlots) continue;
    if (std::optional<uint32_t> slot = FirstClearInChunk(static_cast<uint32_t>(c), start)) return slot;
  }
  // Above the highest chunk: free by construction.
  const uint64_t start = std::max<uint64_t>(from, uint64_t{chunks_.size()} << kChunkShift);
  if (start >= slot_count_) return std::nullopt;
  return static_cast<uint32_t>(start);
}

void SlotAllocator::MarkUsed(uint32_t slot) {
  Take(slot);
  ++used_;
}

void SlotAllocator::MarkBad(uint32_t slot) {
  if (is_bad(slot)) return;
  if (!IsTaken(slot)) {
    Take(slot);
  } else if (quarantined_.erase(slot) == 0) {
    --used_;
  }
  bad_.insert(slot);
}

std::optional<uint32_t> SlotAllocator::Allocate() {
  if (free_count() == 0) return std::nullopt;
  std::optional<uint32_t> slot = FirstFreeFrom(cursor_);
  if (!slot) slot = FirstFreeFrom(0);  // wrap
  if (!slot) return std::nullopt;      // unreachable while the counts are right
  MarkUsed(*slot);
  cursor_ = *slot + 1 == slot_count_ ? 0 : *slot + 1;
  return slot;
}

void SlotAllocator::Unallocate(uint32_t slot) {
  Free(slot);
  --used_;
}

void SlotAllocator::Release(uint32_t slot, uint64_t seq) {
  --used_;
  quarantined_.insert(slot);
  quarantine_order_.emplace_back(seq, slot);
}

void SlotAllocator::ReleaseDurable(uint64_t durable_seq) {
  while (!quarantine_order_.empty() && quarantine_order_.front().first <= durable_seq) {
    const uint32_t slot = quarantine_order_.front().second;
    quarantine_order_.pop_front();
    if (quarantined_.erase(slot) != 0) Free(slot);
  }
}

size_t SlotAllocator::MemoryBytes() const {
  // A hash set node: the value and a next pointer, rounded up by malloc.
  constexpr size_t kNode = 2 * sizeof(void*);
  size_t bytes = chunks_.capacity() * sizeof(chunks_[0]);
  for (const auto& chunk : chunks_) bytes += chunk ? sizeof(Chunk) : 0;
  for (const auto* set : {&bad_, &quarantined_}) bytes += set->bucket_count() * sizeof(void*) + set->size() * kNode;
  return bytes + quarantine_order_.size() * sizeof(quarantine_order_[0]);
}

}  // namespace remapfs
