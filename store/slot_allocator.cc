#include "store/slot_allocator.h"

#include <algorithm>

namespace remapfs {

SlotAllocator::SlotAllocator(uint32_t slot_count) : state_(slot_count, kFree), free_(slot_count) {}

void SlotAllocator::Leave(uint32_t slot) {
  switch (state_[slot]) {
    case kFree: --free_; break;
    case kUsed: --used_; break;
    case kBad: --bad_; break;
    case kQuarantined:
      quarantine_.erase(std::find_if(quarantine_.begin(), quarantine_.end(),
                                     [slot](const auto& q) { return q.second == slot; }));
      break;
  }
}

void SlotAllocator::MarkUsed(uint32_t slot) {
  Leave(slot);
  state_[slot] = kUsed;
  ++used_;
}

void SlotAllocator::MarkBad(uint32_t slot) {
  if (state_[slot] == kBad) return;
  Leave(slot);
  state_[slot] = kBad;
  ++bad_;
}

std::optional<uint32_t> SlotAllocator::Allocate() {
  if (free_ == 0) return std::nullopt;
  const uint32_t n = slot_count();
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t slot = cursor_ + i < n ? cursor_ + i : cursor_ + i - n;
    if (state_[slot] == kFree) {
      state_[slot] = kUsed;
      --free_;
      ++used_;
      cursor_ = slot + 1 == n ? 0 : slot + 1;
      return slot;
    }
  }
  return std::nullopt;  // unreachable while the counts are right
}

void SlotAllocator::Unallocate(uint32_t slot) {
  Leave(slot);
  state_[slot] = kFree;
  ++free_;
}

void SlotAllocator::Release(uint32_t slot, uint64_t seq) {
  Leave(slot);
  state_[slot] = kQuarantined;
  quarantine_.emplace_back(seq, slot);
}

void SlotAllocator::ReleaseDurable(uint64_t durable_seq) {
  while (!quarantine_.empty() && quarantine_.front().first <= durable_seq) {
    state_[quarantine_.front().second] = kFree;
    ++free_;
    quarantine_.pop_front();
  }
}

}  // namespace remapfs
