// SlotAllocator: lowest-first-after-the-last allocation, bad slots, and the
// quarantine of freed slots until their freeing is durable.
#include "store/slot_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <random>
#include <set>
#include <vector>

namespace remapfs {
namespace {

void ExpectCounts(const SlotAllocator& a, uint32_t free, uint32_t used, uint32_t bad, uint32_t quarantined) {
  EXPECT_EQ(a.free_count(), free);
  EXPECT_EQ(a.used_count(), used);
  EXPECT_EQ(a.bad_count(), bad);
  EXPECT_EQ(a.quarantined_count(), quarantined);
  EXPECT_EQ(free + used + bad + quarantined, a.slot_count());
}

TEST(SlotAllocator, AllocatesConsecutivelyThenRunsOut) {
  SlotAllocator a(4);
  ExpectCounts(a, 4, 0, 0, 0);
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(a.Allocate(), i);
  EXPECT_EQ(a.Allocate(), std::nullopt);
  ExpectCounts(a, 0, 4, 0, 0);
  SlotAllocator none(0);
  EXPECT_EQ(none.Allocate(), std::nullopt);
}

TEST(SlotAllocator, ContinuesAfterTheLastTakenAndWraps) {
  SlotAllocator a(6);
  for (uint32_t i = 0; i < 4; ++i) ASSERT_EQ(a.Allocate(), i);
  a.Release(1, 1);
  a.ReleaseDurable(1);
  // Slot 1 is free again, but the cursor is past it: 4, 5, then wrap to 1.
  EXPECT_EQ(a.Allocate(), 4u);
  EXPECT_EQ(a.Allocate(), 5u);
  EXPECT_EQ(a.Allocate(), 1u);
  EXPECT_EQ(a.Allocate(), std::nullopt);
}

TEST(SlotAllocator, LoadedStateIsSkipped) {
  SlotAllocator a(5);
  a.MarkUsed(0);
  a.MarkBad(1);
  a.MarkUsed(3);
  ExpectCounts(a, 2, 2, 1, 0);
  EXPECT_TRUE(a.is_bad(1));
  EXPECT_FALSE(a.is_bad(0));
  EXPECT_EQ(a.Allocate(), 2u);
  EXPECT_EQ(a.Allocate(), 4u);
  EXPECT_EQ(a.Allocate(), std::nullopt);
}

TEST(SlotAllocator, MarkBadFromEveryState) {
  SlotAllocator a(4);
  ASSERT_EQ(a.Allocate(), 0u);
  a.MarkBad(0);  // used -> bad
  ExpectCounts(a, 3, 0, 1, 0);
  a.MarkBad(0);  // idempotent
  ExpectCounts(a, 3, 0, 1, 0);
  a.MarkBad(2);  // free -> bad
  ExpectCounts(a, 2, 0, 2, 0);
  ASSERT_EQ(a.Allocate(), 1u);
  a.Release(1, 7);
  a.MarkBad(1);  // quarantined -> bad: never freed later
  ExpectCounts(a, 1, 0, 3, 0);
  a.ReleaseDurable(100);
  ExpectCounts(a, 1, 0, 3, 0);
  EXPECT_EQ(a.Allocate(), 3u);
  EXPECT_EQ(a.Allocate(), std::nullopt);
}

TEST(SlotAllocator, QuarantineEndsOnlyWhenDurable) {
  SlotAllocator a(3);
  for (uint32_t i = 0; i < 3; ++i) ASSERT_EQ(a.Allocate(), i);
  a.Release(2, 10);
  a.Release(0, 11);
  a.Release(1, 12);
  ExpectCounts(a, 0, 0, 0, 3);
  EXPECT_EQ(a.Allocate(), std::nullopt);  // freed, but not durably
  a.ReleaseDurable(9);
  ExpectCounts(a, 0, 0, 0, 3);
  a.ReleaseDurable(10);
  ExpectCounts(a, 1, 0, 0, 2);
  EXPECT_EQ(a.Allocate(), 2u);
  a.ReleaseDurable(12);
  ExpectCounts(a, 2, 1, 0, 0);
  a.ReleaseDurable(12);  // again: nothing more
  ExpectCounts(a, 2, 1, 0, 0);
}

TEST(SlotAllocator, RandomOperationsKeepCountsAndNeverHandOutATakenSlot) {
  std::mt19937_64 rng(5);
  constexpr uint32_t kSlots = 50;
  SlotAllocator a(kSlots);
  std::set<uint32_t> used, bad;
  std::vector<std::pair<uint64_t, uint32_t>> quarantine;
  uint64_t seq = 0, durable = 0;
  for (int op = 0; op < 20000; ++op) {
    switch (rng() % 4) {
      case 0: {
        auto slot = a.Allocate();
        const uint32_t expected_free = kSlots - static_cast<uint32_t>(used.size() + bad.size() + quarantine.size());
        if (expected_free == 0) {
          ASSERT_EQ(slot, std::nullopt);
        } else {
          ASSERT_TRUE(slot);
          ASSERT_FALSE(used.count(*slot) || bad.count(*slot)) << *slot;
          for (const auto& q : quarantine) ASSERT_NE(q.second, *slot);
          used.insert(*slot);
        }
        break;
      }
      case 1:
        if (!used.empty()) {
          auto it = std::next(used.begin(), static_cast<long>(rng() % used.size()));
          a.Release(*it, ++seq);
          quarantine.emplace_back(seq, *it);
          used.erase(it);
        }
        break;
      case 2:
        durable = std::min(seq, durable + rng() % 3);
        a.ReleaseDurable(durable);
        std::erase_if(quarantine, [&](const auto& q) { return q.first <= durable; });
        break;
      case 3:
        if (rng() % 8 == 0 && !used.empty() && bad.size() < 10) {
          const uint32_t s = *used.begin();
          a.MarkBad(s);
          used.erase(s);
          bad.insert(s);
        }
        break;
    }
    ASSERT_EQ(a.used_count(), used.size());
    ASSERT_EQ(a.bad_count(), bad.size());
    ASSERT_EQ(a.quarantined_count(), quarantine.size());
    ASSERT_EQ(a.free_count() + a.used_count() + a.bad_count() + a.quarantined_count(), kSlots);
  }
}

}  // namespace
}  // namespace remapfs
