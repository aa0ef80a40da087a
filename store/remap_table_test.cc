// RemapTable against std::map: the same answers for every Find, Collect,
// ForEachIn and ForEach after any sequence of Set and Erase, through leaf
// splits, emptied and dropped leaves, appends and random inserts, and across
// the groups of the leaves' heads and of the leaf index.
#include "store/remap_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <vector>

namespace remapfs {
namespace {

constexpr uint32_t kCap = RemapTable::kLeafCapacity;
constexpr uint32_t kGroup = RemapTable::kGroup;

class Differential {
 public:
  void Set(uint64_t sector, uint32_t slot) {
    table_.Set(sector, slot);
    model_[sector] = slot;
  }
  void Erase(uint64_t sector) { EXPECT_EQ(table_.Erase(sector), model_.erase(sector) == 1) << sector; }

  std::vector<Mapping> ModelRange(uint64_t first, uint64_t end) const {
    std::vector<Mapping> out;
    if (first >= end) return out;
    for (auto it = model_.lower_bound(first); it != model_.end() && it->first < end; ++it) {
      out.push_back({it->first, it->second});
    }
    return out;
  }
  std::vector<Mapping> TableRange(uint64_t first, uint64_t end) const {
    std::vector<Mapping> out;
    table_.Collect(first, end, &out);
    std::vector<Mapping> visited;
    table_.ForEachIn(first, end, [&](const Mapping& m) { visited.push_back(m); });
    EXPECT_EQ(visited, out);
    return out;
  }

  // Everything, plus point and range probes around `probe`.
  void Check(uint64_t probe, std::mt19937_64& rng) {
    ASSERT_EQ(table_.size(), model_.size());
    std::vector<Mapping> all;
    table_.ForEach([&](const Mapping& m) { all.push_back(m); });
    ASSERT_EQ(all, ModelRange(0, UINT64_MAX));
    for (uint64_t s : {probe, probe + 1, probe - 1, probe + kCap, uint64_t{0}}) {
      auto it = model_.find(s);
      EXPECT_EQ(table_.Find(s), it == model_.end() ? std::nullopt : std::optional<uint32_t>(it->second)) << s;
      auto from = model_.lower_bound(s);
      EXPECT_EQ(table_.FirstFrom(s),
                from == model_.end() ? std::nullopt : std::optional<Mapping>(Mapping{from->first, from->second}))
          << s;
    }
    for (int i = 0; i < 4; ++i) {
      const uint64_t a = probe - std::min<uint64_t>(probe, rng() % 2000);
      const uint64_t b = a + rng() % 3000;
      ASSERT_EQ(TableRange(a, b), ModelRange(a, b)) << a << ".." << b;
    }
    ASSERT_EQ(TableRange(probe, probe), std::vector<Mapping>{});
    ASSERT_EQ(TableRange(probe + 1, probe), std::vector<Mapping>{});
  }

  RemapTable table_;
  std::map<uint64_t, uint32_t> model_;
};

TEST(RemapTable, Empty) {
  RemapTable t;
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.Find(0), std::nullopt);
  EXPECT_FALSE(t.Erase(0));
  std::vector<Mapping> out;
  t.Collect(0, UINT64_MAX, &out);
  EXPECT_TRUE(out.empty());
  int n = 0;
  t.ForEach([&](const Mapping&) { ++n; });
  EXPECT_EQ(n, 0);
}

TEST(RemapTable, SetReplacesAndPendingSlot) {
  RemapTable t;
  t.Set(5, 1);
  t.Set(5, kPendingSlot);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.Find(5), kPendingSlot);
  std::vector<Mapping> out;
  t.Collect(0, 10, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].pending());
  t.Set(UINT64_MAX - 1, 7);
  EXPECT_EQ(t.Find(UINT64_MAX - 1), 7u);
  EXPECT_TRUE(t.Erase(5));
  EXPECT_FALSE(t.Erase(5));
  EXPECT_EQ(t.size(), 1u);
}

TEST(RemapTable, AppendsFillLeavesAndCollectAppends) {
  Differential d;
  std::mt19937_64 rng(1);
  for (uint64_t s = 0; s < 10 * kCap + 3; ++s) d.Set(s * 3, static_cast<uint32_t>(s));
  d.Check(5 * kCap * 3, rng);
  // Sequential appends fill leaves completely: about 12 bytes an entry.
  EXPECT_LT(d.table_.MemoryBytes(), 12 * (10 * kCap + 3) * 1.3 + 4096);
  // Collect appends to what *out holds already.
  std::vector<Mapping> out{{1, 1}};
  d.table_.Collect(0, 6, &out);
  EXPECT_EQ(out, (std::vector<Mapping>{{1, 1}, {0, 0}, {3, 1}}));
}

TEST(RemapTable, DescendingAndMiddleInsertsSplit) {
  Differential d;
  std::mt19937_64 rng(2);
  for (uint64_t s = 5 * kCap; s-- > 0;) d.Set(s, static_cast<uint32_t>(s));  // always at the front
  d.Check(0, rng);
  d.Check(kCap, rng);
  // Fill the gaps between existing keys: splits in the middle of full leaves.
  Differential m;
  for (uint64_t s = 0; s < 4 * kCap; ++s) m.Set(s * 2, 1);
  for (uint64_t s = 0; s < 4 * kCap; ++s) m.Set(s * 2 + 1, 2);
  m.Check(kCap, rng);
  m.Check(3 * kCap, rng);
}

TEST(RemapTable, EmptiedLeavesAreDroppedAndRefilled) {
  Differential d;
  std::mt19937_64 rng(3);
  for (uint64_t s = 0; s < 6 * kCap; ++s) d.Set(s, static_cast<uint32_t>(s));
  // Empty the first leaf, a middle one and the last one, entry by entry.
  for (uint64_t s = 0; s < kCap; ++s) d.Erase(s);
  d.Check(0, rng);
  for (uint64_t s = 2 * kCap; s < 3 * kCap; ++s) d.Erase(s);
  d.Check(2 * kCap, rng);
  for (uint64_t s = 5 * kCap; s < 6 * kCap; ++s) d.Erase(s);
  d.Check(5 * kCap, rng);
  // Refill the holes, below the new first separator and inside the gaps.
  for (uint64_t s = 0; s < kCap + 10; ++s) d.Set(s, 1);
  d.Check(0, rng);
  for (uint64_t s = 2 * kCap; s < 3 * kCap; s += 3) d.Set(s, 2);
  d.Check(2 * kCap, rng);
  for (uint64_t s = 7 * kCap; s > 5 * kCap; s -= 2) d.Set(s, 3);
  d.Check(6 * kCap, rng);
  // Erase everything, then use it again.
  std::vector<uint64_t> keys;
  for (const auto& [k, v] : d.model_) keys.push_back(k);
  std::shuffle(keys.begin(), keys.end(), rng);
  for (uint64_t k : keys) d.Erase(k);
  d.Check(0, rng);
  EXPECT_EQ(d.table_.size(), 0u);
  d.Set(42, 4);
  d.Check(42, rng);
}

// More leaves than one index group holds, full (appends) and then split:
// every lookup at and around each leaf's and each head group's first sector.
TEST(RemapTable, LookupsAtEveryLeafAndGroupBoundary) {
  Differential d;
  std::mt19937_64 rng(5);
  const uint64_t leaves = 3 * kGroup + 2;
  for (uint64_t s = 1; s <= leaves * kCap; ++s) d.Set(s * 4, static_cast<uint32_t>(s));
  auto check_boundaries = [&] {
    for (uint64_t s = 4; s <= leaves * kCap * 4; s += 4 * kGroup) {
      d.Check(s, rng);
      if (::testing::Test::HasFatalFailure()) return;
    }
  };
  check_boundaries();
  // Inserts between the keys of the first leaves split them and shift the
  // index groups of every leaf after them.
  for (uint64_t s = 1; s <= 2 * kCap; ++s) d.Set(s * 4 + 1, 0);
  check_boundaries();
  for (uint64_t s = 1; s <= 3 * kCap; ++s) d.Erase(s * 4);
  check_boundaries();
}

// A range without an entry calls nothing; ForEachIn stops at the range's end.
TEST(RemapTable, ForEachInVisitsOnlyTheRange) {
  RemapTable t;
  for (uint64_t s = 0; s < 4 * kCap; ++s) t.Set(s * 10, static_cast<uint32_t>(s));
  int calls = 0;
  t.ForEachIn(1, 10, [&](const Mapping&) { ++calls; });
  t.ForEachIn(4 * kCap * 10, UINT64_MAX, [&](const Mapping&) { ++calls; });
  t.ForEachIn(50, 50, [&](const Mapping&) { ++calls; });
  EXPECT_EQ(calls, 0);
  std::vector<uint64_t> seen;
  t.ForEachIn(kCap * 10 - 15, kCap * 10 + 11, [&](const Mapping& m) { seen.push_back(m.sector); });
  EXPECT_EQ(seen, (std::vector<uint64_t>{kCap * 10 - 10, kCap * 10, kCap * 10 + 10}));
}

TEST(RemapTable, RandomOperationsMatchStdMap) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE(seed);
    Differential d;
    std::mt19937_64 rng(seed);
    // Key spaces from dense (many hits, many replaces) to sparse (many leaves).
    const uint64_t space = seed == 1 ? 600 : seed == 2 ? 5000 : seed == 3 ? 100000 : UINT64_MAX - 2;
    for (int op = 0; op < 25000; ++op) {
      const uint64_t key = rng() % space;
      const int what = static_cast<int>(rng() % 10);
      if (what < 6) {
        d.Set(key, static_cast<uint32_t>(rng()));
      } else if (what < 9) {
        // Erase a present key most of the time.
        auto it = d.model_.lower_bound(key);
        d.Erase(it != d.model_.end() && (rng() % 4) ? it->first : key);
      } else {
        // A run of appends or of erases, to fill and drain whole leaves.
        const uint64_t base = key, n = rng() % (2 * kCap);
        const bool erase = rng() % 2;
        for (uint64_t i = 0; i < n && base + i < space; ++i) {
          if (erase) {
            d.Erase(base + i);
          } else {
            d.Set(base + i, static_cast<uint32_t>(i));
          }
        }
      }
      if (op % 997 == 0) {
        d.Check(key, rng);
        if (HasFatalFailure()) return;
      }
    }
    d.Check(0, rng);
  }
}

}  // namespace
}  // namespace remapfs
