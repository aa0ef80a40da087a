// SlotAllocator: lowest-first-after-the-last allocation, bad slots, the
// quarantine of freed slots until their freeing is durable, and memory that
// follows the slots taken, not the size of SPARE.
#include "store/slot_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <iterator>
#include <random>
#include <set>
#include <vector>

#include "store/set_format.h"

namespace remapfs {
namespace {

constexpr uint32_t kMaxSlots = kMaxSlotCount;

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

// The biggest spare: 2^32 - 1 slots cost nothing until used, and a few used,
// bad or quarantined ones cost their chunks, not 4 GiB.
TEST(SlotAllocator, HugeSpareCostsOnlyWhatIsTaken) {
  SlotAllocator a(kMaxSlots);
  EXPECT_LT(a.MemoryBytes(), 1024u);
  ExpectCounts(a, kMaxSlots, 0, 0, 0);
  for (uint32_t i = 0; i < 1000; ++i) ASSERT_EQ(a.Allocate(), i);
  a.MarkBad(7);
  a.Release(8, 1);
  ExpectCounts(a, kMaxSlots - 1000, 998, 1, 1);
  EXPECT_LT(a.MemoryBytes(), 16u * 1024);
  // A bad slot at the very top costs its chunk and the index up to it.
  a.MarkBad(kMaxSlots - 1);
  EXPECT_TRUE(a.is_bad(kMaxSlots - 1));
  EXPECT_LT(a.MemoryBytes(), 1024u * 1024);
  // Everything given back: the chunks go.
  a.ReleaseDurable(1);
  for (uint32_t i = 0; i < 1000; ++i) {
    if (a.is_used(i)) a.Unallocate(i);
  }
  EXPECT_EQ(a.used_count(), 0u);
  EXPECT_EQ(a.Allocate(), 1000u);  // after the last taken, not back at 0
}

// Slots at the top of the numbering (the last chunk) are tracked like any.
TEST(SlotAllocator, SlotsAtTheTopOfTheNumbering) {
  SlotAllocator a(kMaxSlots);
  for (uint32_t s = kMaxSlots - 3; s < kMaxSlots; ++s) a.MarkUsed(s);
  a.MarkUsed(0);
  a.Release(kMaxSlots - 2, 1);
  a.ReleaseDurable(1);
  for (uint32_t i = 1; i < 5; ++i) ASSERT_EQ(a.Allocate(), i);
  EXPECT_FALSE(a.is_used(kMaxSlots - 2));
  EXPECT_TRUE(a.is_used(kMaxSlots - 1));
  EXPECT_FALSE(a.is_used(5));
}

// A slot count that is not a whole number of chunks: the last chunk's tail
// past slot_count is never handed out.
TEST(SlotAllocator, PartialLastChunk) {
  constexpr uint32_t kSlots = SlotAllocator::kChunkSlots + 3;
  SlotAllocator a(kSlots);
  for (uint32_t i = 0; i < kSlots; ++i) ASSERT_EQ(a.Allocate(), i);
  EXPECT_EQ(a.Allocate(), std::nullopt);
  a.Unallocate(SlotAllocator::kChunkSlots + 1);
  a.Unallocate(5);
  EXPECT_EQ(a.Allocate(), 5u);  // the cursor had wrapped to 0
  EXPECT_EQ(a.Allocate(), SlotAllocator::kChunkSlots + 1);
  EXPECT_EQ(a.Allocate(), std::nullopt);
}

// Against a reference model (the free slots in a std::set, the next one the
// lowest at or after the cursor, else the lowest), over three chunks with
// most slots loaded as used: every choice, state and count must agree.
TEST(SlotAllocator, MatchesAReferenceModelAcrossChunks) {
  constexpr uint32_t kSlots = 2 * SlotAllocator::kChunkSlots + 100;
  std::mt19937_64 rng(11);
  SlotAllocator a(kSlots);
  std::set<uint32_t> free, used, bad;
  std::deque<std::pair<uint64_t, uint32_t>> quarantine;
  for (uint32_t s = 0; s < kSlots; ++s) {
    const auto r = rng() % 1000;
    if (r < 990) {
      a.MarkUsed(s);
      used.insert(s);
    } else if (r < 992) {
      a.MarkBad(s);
      bad.insert(s);
    } else {
      free.insert(s);
    }
  }
  uint32_t cursor = 0;
  uint64_t seq = 0;
  auto random_of = [&](const std::set<uint32_t>& set) {  // REQUIRES: !set.empty()
    auto it = set.lower_bound(static_cast<uint32_t>(rng() % kSlots));
    return it == set.end() ? *set.begin() : *it;
  };
  for (int op = 0; op < 200000; ++op) {
    switch (rng() % 5) {
      case 0: {  // allocate
        auto it = free.lower_bound(cursor);
        if (it == free.end()) it = free.begin();
        const std::optional<uint32_t> want = it == free.end() ? std::nullopt : std::optional<uint32_t>(*it);
        ASSERT_EQ(a.Allocate(), want);
        if (want) {
          free.erase(*want);
          used.insert(*want);
          cursor = *want + 1 == kSlots ? 0 : *want + 1;
        }
        break;
      }
      case 1:  // release
        if (!used.empty()) {
          const uint32_t s = random_of(used);
          a.Release(s, ++seq);
          used.erase(s);
          quarantine.emplace_back(seq, s);
        }
        break;
      case 2: {  // durable
        const uint64_t durable = seq - std::min<uint64_t>(seq, rng() % 4);
        a.ReleaseDurable(durable);
        while (!quarantine.empty() && quarantine.front().first <= durable) {
          if (!bad.count(quarantine.front().second)) free.insert(quarantine.front().second);
          quarantine.pop_front();
        }
        break;
      }
      case 3: {  // a slot goes bad, whatever its state
        const uint32_t s = static_cast<uint32_t>(rng() % kSlots);
        a.MarkBad(s);
        free.erase(s);
        used.erase(s);
        bad.insert(s);
        break;
      }
      case 4:  // a write failed for another reason
        if (!used.empty()) {
          const uint32_t s = random_of(used);
          a.Unallocate(s);
          used.erase(s);
          free.insert(s);
        }
        break;
    }
    std::erase_if(quarantine, [&](const auto& q) { return bad.count(q.second) != 0; });
    ASSERT_EQ(a.free_count(), free.size());
    ASSERT_EQ(a.used_count(), used.size());
    ASSERT_EQ(a.bad_count(), bad.size());
    ASSERT_EQ(a.quarantined_count(), quarantine.size());
    const uint32_t probe = static_cast<uint32_t>(rng() % kSlots);
    ASSERT_EQ(a.is_used(probe), used.count(probe) != 0) << probe;
    ASSERT_EQ(a.is_bad(probe), bad.count(probe) != 0) << probe;
  }
}

}  // namespace
}  // namespace remapfs
