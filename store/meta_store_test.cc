// MetaStore::Apply writes runs of sector puts and of events as multi-row
// INSERTs: the result must be that of applying every change in order, one by
// one, whatever the mix and the lengths of the runs.
#include <gtest/gtest.h>

// GCC 12 warns, wrongly, that the Event inside a Change may be used
// uninitialized when a std::vector<Change> grows (the variant's move).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <map>
#include <random>

#include "store/meta_store.h"
#include "store/set_format.h"
#include "tests/support/testutil.h"

namespace remapfs {
namespace {

class MetaStoreApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_.File("set.db");
    SetInfo info;
    info.uuid = NewUuid();
    info.sector_size = 512;
    info.main_size = uint64_t{1} << 30;
    info.slot_count = 1 << 20;
    ASSERT_TRUE(MetaStore::Create(db_, info).ok());
    ASSERT_TRUE(MetaStore::Open(db_, false, &store_).ok());
  }

  // Applies `changes` to the store and to the model of what it must hold.
  void Apply(const std::vector<Change>& changes) {
    for (const Change& c : changes) {
      if (auto* p = std::get_if<PutSector>(&c)) {
        sectors_[p->sector] = p->slot;
      } else if (auto* e = std::get_if<EraseSector>(&c)) {
        sectors_.erase(e->sector);
      } else if (auto* ev = std::get_if<Event>(&c)) {
        events_.push_back(*ev);
      }
    }
    Status s = store_->Apply(changes, {{"writes", changes.size()}});
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void ExpectStored() {
    std::map<uint64_t, uint32_t> got;
    ASSERT_TRUE(store_->LoadSectors([&](uint64_t sector, uint32_t slot) { got[sector] = slot; }).ok());
    EXPECT_EQ(got, sectors_);
    std::vector<Event> events;
    ASSERT_TRUE(store_->LoadEvents(events_.size() + 10, &events).ok());
    ASSERT_EQ(events.size(), events_.size());
    for (size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(events[i].time_us, events_[i].time_us) << i;
      EXPECT_EQ(events[i].kind, events_[i].kind) << i;
      EXPECT_EQ(events[i].sector, events_[i].sector) << i;
      EXPECT_EQ(events[i].slot, events_[i].slot) << i;
      EXPECT_EQ(events[i].detail, events_[i].detail) << i;
    }
  }

  test::TempDir dir_;
  std::string db_;
  std::unique_ptr<MetaStore> store_;
  std::map<uint64_t, uint32_t> sectors_;
  std::vector<Event> events_;
  int64_t clock_ = 1'700'000'000'000'000;
};

Event MakeEvent(int64_t time_us, uint64_t sector, int64_t slot, EventKind kind = EventKind::kRemapped) {
  return Event{time_us, kind, sector, slot, "detail " + std::to_string(sector)};
}

TEST_F(MetaStoreApplyTest, LongRunsAcrossTheMultiRowSize) {
  // 64 rows go to one INSERT: runs of 1, 63, 64, 65, 200 and 1000.
  for (size_t run : {1, 63, 64, 65, 200, 1000}) {
    std::vector<Change> changes;
    for (size_t i = 0; i < run; ++i) {
      const uint64_t sector = i * 3 + run;
      changes.push_back(PutSector{sector, i % 7 == 0 ? kPendingSlot : static_cast<uint32_t>(i + run)});
      changes.emplace_back(std::in_place_type<Event>,
                           MakeEvent(++clock_, sector, i % 7 == 0 ? -1 : static_cast<int64_t>(i)));
    }
    Apply(changes);
  }
  ExpectStored();
}

TEST_F(MetaStoreApplyTest, ChangesToOneSectorStayInOrder) {
  std::vector<Change> changes;
  // Put, erase and put again the same sectors inside runs longer than 64.
  for (uint64_t s = 0; s < 100; ++s) changes.push_back(PutSector{s, static_cast<uint32_t>(s)});
  changes.push_back(EraseSector{5});
  for (uint64_t s = 0; s < 100; ++s) changes.push_back(PutSector{s, static_cast<uint32_t>(1000 + s)});
  changes.push_back(EraseSector{7});
  changes.push_back(EraseSector{99});
  changes.push_back(PutSector{99, kPendingSlot});
  changes.push_back(PutSector{7, 7777});
  changes.push_back(EraseSector{7});
  for (int i = 0; i < 70; ++i) changes.push_back(PutSector{500, static_cast<uint32_t>(i)});
  changes.push_back(PutBadSlot{3});
  changes.push_back(EraseSector{500});
  changes.push_back(PutSector{500, 42});
  Apply(changes);
  ExpectStored();
  EXPECT_EQ(sectors_.count(7), 0u);
  EXPECT_EQ(sectors_.at(500), 42u);
}

TEST_F(MetaStoreApplyTest, RandomMixMatchesOneByOne) {
  for (uint64_t seed : test::Seeds("META_STORE", {1, 2, 3})) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " (META_STORE_SEED)");
    std::mt19937_64 rng(seed);
    for (int batch = 0; batch < 20; ++batch) {
      std::vector<Change> changes;
      const int n = static_cast<int>(rng() % 400);
      for (int i = 0; i < n; ++i) {
        const uint64_t sector = rng() % 150;  // few sectors: many repeats
        switch (rng() % 8) {
          case 0:
            changes.push_back(EraseSector{sector});
            break;
          case 1:
          case 2:
            changes.emplace_back(std::in_place_type<Event>,
                                 MakeEvent(++clock_, sector, static_cast<int64_t>(rng() % 100) - 1,
                                           rng() % 2 ? EventKind::kPending : EventKind::kRemapped));
            break;
          case 3:
            changes.push_back(PutBadSlot{static_cast<uint32_t>(rng() % 1000)});
            break;
          default:
            changes.push_back(PutSector{sector, rng() % 5 == 0 ? kPendingSlot : static_cast<uint32_t>(rng() % 1000)});
        }
      }
      Apply(changes);
    }
    ExpectStored();
  }
}

TEST_F(MetaStoreApplyTest, LoadSectorsHandsOverManyBatchesInOrder) {
  // Rows reach the caller from another thread in batches of thousands: every
  // row, once, in sector order, across many batches.
  std::vector<Change> changes;
  for (uint64_t i = 0; i < 100'000; ++i) {
    changes.push_back(PutSector{i * 7 + 3, i % 11 == 0 ? kPendingSlot : static_cast<uint32_t>(i)});
  }
  Apply(changes);
  std::vector<std::pair<uint64_t, uint32_t>> got;
  ASSERT_TRUE(store_->LoadSectors([&](uint64_t sector, uint32_t slot) { got.emplace_back(sector, slot); }).ok());
  const std::vector<std::pair<uint64_t, uint32_t>> expected(sectors_.begin(), sectors_.end());
  EXPECT_EQ(got, expected);
}

}  // namespace
}  // namespace remapfs
