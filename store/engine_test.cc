// Behaviour tests of the engine (DESIGN.md, "Behaviour, as a drive's firmware
// would do it"). Every fault comes from a real fault rule on a MemEnv-backed
// set, through the engine's own FaultyBackends; nothing under test is mocked.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "store/check.h"
#include "store/meta_store.h"
#include "tests/support/testharness.h"

namespace remapfs {
namespace {

using test::CounterValue;
using test::MemSet;
using test::Pattern;

// The metadata writer never commits on its own during a test: only Flush,
// Close and the destructor do. That makes "not durable yet" observable.
EngineOptions QuietOptions(int read_attempts = 3) {
  EngineOptions o;
  o.read_attempts = read_attempts;
  o.commit_interval = std::chrono::hours(1);
  return o;
}

FaultRule Rule(Device device, uint64_t first, uint64_t count, FaultOp op, uint64_t times = 0) {
  FaultRule r;
  r.device = device;
  r.sectors = {first, count};
  r.op = op;
  r.times = times;
  return r;
}

uint64_t AddRule(Engine* e, const FaultRule& r) {
  FaultRule added;
  Status s = e->AddFaultRule(r, &added);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_NE(added.id, 0u);
  return added.id;
}

std::string ReadOk(Engine* e, uint64_t offset, size_t n) {
  std::string out(n, '\0');
  Status s = e->Read(offset, n, out.data());
  EXPECT_TRUE(s.ok()) << "read " << offset << "+" << n << ": " << s.ToString();
  return out;
}

void WriteOk(Engine* e, uint64_t offset, const std::string& data) {
  Status s = e->Write(offset, data.size(), data.data());
  ASSERT_TRUE(s.ok()) << "write " << offset << "+" << data.size() << ": " << s.ToString();
}

std::vector<Mapping> All(Engine* e) { return e->List(0, e->sector_count()); }

// Bytes of slot `slot` as they are in SPARE right now.
std::string SlotBytes(MemSet& set, uint32_t slot, uint32_t ss) {
  return set.env.Contents(set.paths.spare).substr(SlotOffset(slot, ss), ss);
}

std::string MainBytes(MemSet& set, uint64_t offset, size_t n) {
  return set.env.Contents(set.paths.main).substr(offset, n);
}

std::vector<Event> LoadEvents(const std::string& db) {
  std::unique_ptr<MetaStore> meta;
  Status s = MetaStore::Open(db, /*read_only=*/true, &meta);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::vector<Event> events;
  if (meta) {
    s = meta->LoadEvents(1000, &events);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  return events;
}

std::map<uint64_t, uint32_t> LoadSectors(const std::string& db) {
  std::unique_ptr<MetaStore> meta;
  Status s = MetaStore::Open(db, /*read_only=*/true, &meta);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::map<uint64_t, uint32_t> out;
  if (meta) {
    s = meta->LoadSectors([&](uint64_t sector, uint32_t slot) { out[sector] = slot; });
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  return out;
}

bool HasEvent(const std::vector<Event>& events, EventKind kind, uint64_t sector, int64_t slot) {
  return std::any_of(events.begin(), events.end(), [&](const Event& ev) {
    return ev.kind == kind && ev.sector == sector && ev.slot == slot;
  });
}

// ---------------------------------------------------------------- writes

TEST(EngineWrite, MainWriteErrorIsRemappedAndInvisible) {
  MemSet set;  // 512-byte sectors
  auto e = set.OpenOrDie(QuietOptions());
  EXPECT_EQ(e->GetHealth().State(), "ok");
  AddRule(e.get(), Rule(Device::kMain, 10, 2, FaultOp::kWrite));
  const std::string data = Pattern(4096, 1);  // sectors 8..15
  WriteOk(e.get(), 8 * 512, data);

  EXPECT_EQ(ReadOk(e.get(), 8 * 512, data.size()), data);
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{10, 0}, {11, 1}}));
  // Only the faulty sectors went to SPARE; the rest of the request is on MAIN,
  // and the failing sectors of MAIN were never written.
  EXPECT_EQ(MainBytes(set, 8 * 512, 1024), data.substr(0, 1024));
  EXPECT_EQ(MainBytes(set, 10 * 512, 1024), std::string(1024, '\0'));
  EXPECT_EQ(MainBytes(set, 12 * 512, 2048), data.substr(2048));
  EXPECT_EQ(SlotBytes(set, 0, 512), data.substr(1024, 512));
  EXPECT_EQ(SlotBytes(set, 1, 512), data.substr(1536, 512));

  Health h = e->GetHealth();
  EXPECT_EQ(CounterValue(h, Counter::kRemaps), 2u);
  EXPECT_GE(CounterValue(h, Counter::kMainWriteErrors), 1u);
  EXPECT_EQ(CounterValue(h, Counter::kWriteEIO), 0u);
  EXPECT_EQ(CounterValue(h, Counter::kPendingMarked), 0u);
  EXPECT_EQ(h.remapped_sectors, 2u);
  EXPECT_EQ(h.pending_sectors, 0u);
  EXPECT_EQ(h.slots_used, 2u);
  EXPECT_EQ(h.slots_free, 62u);
  EXPECT_EQ(h.State(), "degraded");  // MAIN has remapped sectors

  ASSERT_TRUE(e->Flush().ok());
  auto events = LoadEvents(set.paths.db);
  EXPECT_TRUE(HasEvent(events, EventKind::kRemapped, 10, 0));
  EXPECT_TRUE(HasEvent(events, EventKind::kRemapped, 11, 1));
}

TEST(EngineWrite, LaterWritesGoToTheSlotNotMain) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  const uint64_t id = AddRule(e.get(), Rule(Device::kMain, 3, 1, FaultOp::kWrite));
  WriteOk(e.get(), 3 * 512, Pattern(512, 1));
  ASSERT_TRUE(e->RemoveFaultRule(id).ok());
  const std::string second = Pattern(512, 2);
  WriteOk(e.get(), 3 * 512, second);
  EXPECT_EQ(ReadOk(e.get(), 3 * 512, 512), second);
  EXPECT_EQ(SlotBytes(set, 0, 512), second);
  EXPECT_EQ(MainBytes(set, 3 * 512, 512), std::string(512, '\0'));
  EXPECT_EQ(CounterValue(e->GetHealth(), Counter::kRemaps), 1u);
}

TEST(EngineWrite, PartialWriteToFailingSectorMergesWithMain) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  const std::string old = Pattern(2048, 7);  // sectors 20..23
  WriteOk(e.get(), 20 * 512, old);
  AddRule(e.get(), Rule(Device::kMain, 21, 2, FaultOp::kWrite));
  // 700 bytes from the middle of sector 21 into sector 22.
  const std::string part = Pattern(700, 8);
  WriteOk(e.get(), 21 * 512 + 100, part);
  std::string expected = old;
  expected.replace(512 + 100, part.size(), part);
  EXPECT_EQ(ReadOk(e.get(), 20 * 512, 2048), expected);
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{21, 0}, {22, 1}}));
  EXPECT_EQ(SlotBytes(set, 0, 512), expected.substr(512, 512));
  EXPECT_EQ(SlotBytes(set, 1, 512), expected.substr(1024, 512));
}

TEST(EngineWrite, PartialWriteToUnreadableFailingSectorFailsAndMakesItPending) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  AddRule(e.get(), Rule(Device::kMain, 40, 1, FaultOp::kBoth));
  const std::string part = Pattern(100, 1);
  Status s = e->Write(40 * 512 + 10, part.size(), part.data());
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_EQ(s.ToErrno(), EIO);
  // The rest of the sector is unknown: no slot may be filled with made-up
  // bytes, and the sector is now known unreadable.
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{40, kPendingSlot}}));
  Health h = e->GetHealth();
  EXPECT_EQ(h.slots_used, 0u);
  EXPECT_EQ(CounterValue(h, Counter::kWriteEIO), 1u);
  EXPECT_EQ(CounterValue(h, Counter::kRemaps), 0u);
}

TEST(EngineWrite, OutOfRangeAndEmptyRequests) {
  MemSet set(64 * 512, 8, 512);
  auto e = set.OpenOrDie(QuietOptions());
  char buf[16] = {};
  EXPECT_EQ(e->Write(e->size() - 8, 16, buf).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(e->Read(e->size() - 8, 16, buf).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(e->Read(UINT64_MAX - 4, 8, buf).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(e->Write(UINT64_MAX - 4, 8, buf).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(e->Read(e->size(), 0, buf).ok());
  EXPECT_TRUE(e->Write(e->size() - 16, 16, buf).ok());
}

// ----------------------------------------------------------------- reads

TEST(EngineRead, ReadErrorIsEIOAndMakesOnlyThatSectorPending) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  const std::string data = Pattern(16 * 512, 3);
  WriteOk(e.get(), 0, data);
  const uint64_t id = AddRule(e.get(), Rule(Device::kMain, 7, 1, FaultOp::kRead));

  std::string out(data.size(), '\0');
  Status s = e->Read(0, out.size(), out.data());
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_EQ(s.ToErrno(), EIO);
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{7, kPendingSlot}}));

  Health h = e->GetHealth();
  EXPECT_EQ(h.pending_sectors, 1u);
  EXPECT_EQ(h.remapped_sectors, 0u);
  EXPECT_EQ(h.slots_used, 0u);
  EXPECT_GE(CounterValue(h, Counter::kMainReadErrors), 1u);
  EXPECT_EQ(CounterValue(h, Counter::kPendingMarked), 1u);
  EXPECT_EQ(CounterValue(h, Counter::kReadEIO), 1u);
  EXPECT_EQ(h.State(), "degraded");

  // The neighbours are fine.
  EXPECT_EQ(ReadOk(e.get(), 0, 7 * 512), data.substr(0, 7 * 512));
  EXPECT_EQ(ReadOk(e.get(), 8 * 512, 8 * 512), data.substr(8 * 512));

  // Pending stays unreadable even once MAIN would answer: never invent data.
  ASSERT_TRUE(e->RemoveFaultRule(id).ok());
  s = e->Read(7 * 512 + 100, 10, out.data());
  EXPECT_EQ(s.ToErrno(), EIO) << s.ToString();
  s = e->Read(6 * 512, 1024, out.data());
  EXPECT_EQ(s.ToErrno(), EIO) << s.ToString();
  EXPECT_EQ(CounterValue(e->GetHealth(), Counter::kReadEIO), 3u);
  EXPECT_EQ(CounterValue(e->GetHealth(), Counter::kPendingMarked), 1u);

  ASSERT_TRUE(e->Flush().ok());
  EXPECT_TRUE(HasEvent(LoadEvents(set.paths.db), EventKind::kPending, 7, -1));
  EXPECT_EQ(LoadSectors(set.paths.db), (std::map<uint64_t, uint32_t>{{7, kPendingSlot}}));
}

TEST(EngineRead, RetriesHideTransientErrors) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions(/*read_attempts=*/3));
  const std::string data = Pattern(64 * 512, 4);
  WriteOk(e.get(), 0, data);

  // Fails twice, then answers: the retry succeeds, nothing becomes pending.
  AddRule(e.get(), Rule(Device::kMain, 20, 1, FaultOp::kRead, /*times=*/2));
  EXPECT_EQ(ReadOk(e.get(), 16 * 512, 8 * 512), data.substr(16 * 512, 8 * 512));
  // The request read, then read_attempts per sector: 3 more failures are
  // still absorbed...
  AddRule(e.get(), Rule(Device::kMain, 30, 1, FaultOp::kRead, /*times=*/3));
  EXPECT_EQ(ReadOk(e.get(), 30 * 512, 512), data.substr(30 * 512, 512));
  EXPECT_TRUE(All(e.get()).empty());
  EXPECT_EQ(CounterValue(e->GetHealth(), Counter::kReadEIO), 0u);
  EXPECT_GE(CounterValue(e->GetHealth(), Counter::kMainReadErrors), 2u);

  // ...but the retries are bounded: 4 failures in a row make it pending.
  AddRule(e.get(), Rule(Device::kMain, 40, 1, FaultOp::kRead, /*times=*/4));
  std::string out(512, '\0');
  EXPECT_EQ(e->Read(40 * 512, 512, out.data()).ToErrno(), EIO);
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{40, kPendingSlot}}));
}

TEST(EngineRead, SingleAttemptDoesNotRetry) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions(/*read_attempts=*/1));
  AddRule(e.get(), Rule(Device::kMain, 5, 1, FaultOp::kRead, /*times=*/2));
  std::string out(512, '\0');
  EXPECT_EQ(e->Read(5 * 512, 512, out.data()).ToErrno(), EIO);
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{5, kPendingSlot}}));
}

TEST(EngineRead, WriteOnlyRuleDoesNotAffectReads) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  AddRule(e.get(), Rule(Device::kMain, 0, 100, FaultOp::kWrite));
  EXPECT_EQ(ReadOk(e.get(), 0, 100 * 512), std::string(100 * 512, '\0'));
  EXPECT_TRUE(All(e.get()).empty());
}

// --------------------------------------------------------------- pending

TEST(EnginePending, FullWriteRemapsPendingSector) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  AddRule(e.get(), Rule(Device::kMain, 30, 1, FaultOp::kRead));
  std::string out(512, '\0');
  ASSERT_EQ(e->Read(30 * 512, 512, out.data()).ToErrno(), EIO);
  ASSERT_EQ(All(e.get()), (std::vector<Mapping>{{30, kPendingSlot}}));

  const std::string data = Pattern(512, 9);
  WriteOk(e.get(), 30 * 512, data);
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{30, 0}}));
  // MAIN still fails reads of sector 30, so this read proves the slot serves it.
  EXPECT_EQ(ReadOk(e.get(), 30 * 512, 512), data);
  EXPECT_EQ(SlotBytes(set, 0, 512), data);
  Health h = e->GetHealth();
  EXPECT_EQ(h.pending_sectors, 0u);
  EXPECT_EQ(h.remapped_sectors, 1u);
  EXPECT_EQ(CounterValue(h, Counter::kRemaps), 1u);
}

TEST(EnginePending, FullWriteSpanningPendingAndNormalSectors) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  ASSERT_TRUE(e->MarkPending(11).ok());
  ASSERT_TRUE(e->MarkPending(12).ok());
  const std::string data = Pattern(4 * 512 + 300, 2);  // 10..14, ends mid-14
  WriteOk(e.get(), 10 * 512, data);
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{11, 0}, {12, 1}}));
  EXPECT_EQ(ReadOk(e.get(), 10 * 512, data.size()), data);
  EXPECT_EQ(e->GetHealth().pending_sectors, 0u);
}

TEST(EnginePending, PartialWriteToPendingSectorFails) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  ASSERT_TRUE(e->MarkPending(31).ok());
  const std::string part = Pattern(100, 1);
  Status s = e->Write(31 * 512 + 50, part.size(), part.data());
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_EQ(s.ToErrno(), EIO);
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{31, kPendingSlot}}));
  Health h = e->GetHealth();
  EXPECT_EQ(h.slots_used, 0u);
  EXPECT_EQ(h.pending_sectors, 1u);
  EXPECT_EQ(CounterValue(h, Counter::kWriteEIO), 1u);
  std::string out(512, '\0');
  EXPECT_EQ(e->Read(31 * 512, 512, out.data()).ToErrno(), EIO);
}

// ---------------------------------------------------- mixed runs, RMW

// A request of any byte range over main runs, consecutive and scattered
// slots, reads and writes exactly what a flat image would.
TEST(EngineMixed, UnalignedRequestsOverMainAndSlots) {
  constexpr uint32_t kSs = 4096;
  constexpr uint64_t kSectors = 64;
  MemSet set(kSectors * kSs, 32, kSs);
  auto e = set.OpenOrDie(QuietOptions());
  std::string expected = Pattern(kSectors * kSs, 100);
  WriteOk(e.get(), 0, expected);

  // Consecutive slots (5, 6), reversed slots (9, 8), fault remaps (12, 13),
  // the first and the last sector.
  for (uint64_t sector : {5, 6, 9, 8, 20, 0, 63}) ASSERT_TRUE(e->Remap(sector).ok()) << sector;
  const uint64_t id = AddRule(e.get(), Rule(Device::kMain, 12, 2, FaultOp::kWrite));
  WriteOk(e.get(), 12 * kSs, expected.substr(12 * kSs, 2 * kSs));
  ASSERT_TRUE(e->RemoveFaultRule(id).ok());
  const std::vector<Mapping> maps = All(e.get());
  ASSERT_EQ(maps, (std::vector<Mapping>{{0, 5}, {5, 0}, {6, 1}, {8, 3}, {9, 2}, {12, 7}, {13, 8}, {20, 4}, {63, 6}}));
  std::map<uint64_t, uint32_t> slot_of;
  for (const Mapping& m : maps) slot_of[m.sector] = m.slot;
  const std::string main_at_remap = set.env.Contents(set.paths.main);

  std::mt19937_64 rng(42);
  auto check_range = [&](uint64_t off, size_t n) {
    ASSERT_EQ(ReadOk(e.get(), off, n), expected.substr(off, n)) << "read " << off << "+" << n;
  };
  // Hand-picked: 512-unaligned starts crossing remapped and normal sectors.
  const std::vector<std::pair<uint64_t, size_t>> picks = {
      {1000, 3 * kSs + 77},       {5 * kSs - 1, 2 * kSs + 2}, {8 * kSs + 4095, 1},
      {7 * kSs + 513, 3 * kSs},   {11 * kSs + 9, 3 * kSs},    {63 * kSs + 1, kSs - 1},
      {19 * kSs + 4000, 200},     {0, kSectors * kSs},        {6 * kSs + 100, 10},
  };
  uint64_t seed = 1000;
  for (const auto& [off, n] : picks) {
    const std::string data = Pattern(n, ++seed);
    WriteOk(e.get(), off, data);
    expected.replace(off, n, data);
    check_range(off, n);
    check_range(off - std::min<uint64_t>(off, 777), std::min<uint64_t>(n + 1554, expected.size() - off + std::min<uint64_t>(off, 777)));
  }
  for (int i = 0; i < 400; ++i) {
    const uint64_t off = rng() % expected.size();
    const size_t n = 1 + rng() % std::min<uint64_t>(expected.size() - off, 5 * kSs);
    if (rng() % 2) {
      const std::string data = Pattern(n, ++seed);
      WriteOk(e.get(), off, data);
      expected.replace(off, n, data);
    } else {
      check_range(off, n);
    }
  }
  check_range(0, expected.size());

  // Where the bytes are: remapped sectors only in their slots (MAIN keeps
  // what it had when they were remapped), the rest only on MAIN.
  const std::string main = set.env.Contents(set.paths.main);
  for (uint64_t s = 0; s < kSectors; ++s) {
    auto it = slot_of.find(s);
    if (it == slot_of.end()) {
      EXPECT_EQ(main.substr(s * kSs, kSs), expected.substr(s * kSs, kSs)) << "MAIN sector " << s;
    } else {
      EXPECT_EQ(main.substr(s * kSs, kSs), main_at_remap.substr(s * kSs, kSs)) << "MAIN sector " << s;
      EXPECT_EQ(SlotBytes(set, it->second, kSs), expected.substr(s * kSs, kSs)) << "slot of sector " << s;
    }
  }
  EXPECT_EQ(All(e.get()), maps);

  // And it all survives a reopen.
  ASSERT_TRUE(e->Close().ok());
  e.reset();
  e = set.OpenOrDie(QuietOptions());
  check_range(0, expected.size());
  EXPECT_EQ(All(e.get()), maps);
}

TEST(EngineMixed, PartialWriteToSlotIsReadModifyWrite) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  const std::string old = Pattern(3 * 512, 5);  // sectors 4..6
  WriteOk(e.get(), 4 * 512, old);
  ASSERT_TRUE(e->Remap(5).ok());
  ASSERT_EQ(SlotBytes(set, 0, 512), old.substr(512, 512));

  const std::string part = Pattern(100, 6);
  WriteOk(e.get(), 5 * 512 + 200, part);
  std::string expected = old;
  expected.replace(512 + 200, 100, part);
  EXPECT_EQ(ReadOk(e.get(), 4 * 512, 3 * 512), expected);
  EXPECT_EQ(SlotBytes(set, 0, 512), expected.substr(512, 512));
  EXPECT_EQ(MainBytes(set, 5 * 512, 512), old.substr(512, 512));

  // The head and tail of a longer unaligned write are merged too.
  const std::string span = Pattern(600, 7);
  WriteOk(e.get(), 4 * 512 + 300, span);  // 4 (tail), 5 (head)
  expected.replace(300, 600, span);
  EXPECT_EQ(ReadOk(e.get(), 4 * 512, 3 * 512), expected);
  EXPECT_EQ(SlotBytes(set, 0, 512), expected.substr(512, 512));
}

TEST(EngineMixed, PartialWriteToUnreadableSlotFails) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  const std::string old = Pattern(512, 5);
  WriteOk(e.get(), 5 * 512, old);
  ASSERT_TRUE(e->Remap(5).ok());
  AddRule(e.get(), Rule(Device::kSpare, 0, 1, FaultOp::kRead));
  const std::string part = Pattern(10, 1);
  Status s = e->Write(5 * 512 + 3, part.size(), part.data());
  EXPECT_EQ(s.ToErrno(), EIO) << s.ToString();
  EXPECT_EQ(SlotBytes(set, 0, 512), old);  // untouched
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{5, 0}}));
}

// --------------------------------------------------------------- spares

TEST(EngineSpare, ExhaustionFailsWritesWithEIO) {
  MemSet set(1 << 20, 4, 512);
  auto e = set.OpenOrDie(QuietOptions());
  AddRule(e.get(), Rule(Device::kMain, 0, 10, FaultOp::kWrite));
  std::vector<std::string> data;
  for (uint64_t s = 0; s < 4; ++s) {
    data.push_back(Pattern(512, s));
    WriteOk(e.get(), s * 512, data.back());
  }
  Health h = e->GetHealth();
  EXPECT_EQ(h.slots_free, 0u);
  EXPECT_EQ(h.State(), "spare-exhausted");

  const std::string more = Pattern(512, 99);
  Status s = e->Write(4 * 512, more.size(), more.data());
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_EQ(s.ToErrno(), EIO);  // a media error, not ENOSPC
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
  // A multi-sector write that needs a slot fails the same way.
  const std::string big = Pattern(2048, 98);
  EXPECT_EQ(e->Write(5 * 512, big.size(), big.data()).ToErrno(), EIO);

  h = e->GetHealth();
  EXPECT_EQ(CounterValue(h, Counter::kSpareExhausted), 2u);
  EXPECT_EQ(CounterValue(h, Counter::kWriteEIO), 2u);
  EXPECT_EQ(CounterValue(h, Counter::kRemaps), 4u);
  EXPECT_EQ(h.State(), "spare-exhausted");
  EXPECT_EQ(All(e.get()).size(), 4u);
  for (uint64_t i = 0; i < 4; ++i) EXPECT_EQ(ReadOk(e.get(), i * 512, 512), data[i]);
  // Writes that need no slot still work.
  const std::string fine = Pattern(512, 50);
  WriteOk(e.get(), 20 * 512, fine);
  EXPECT_EQ(ReadOk(e.get(), 20 * 512, 512), fine);
  WriteOk(e.get(), 2 * 512, fine);  // a remapped sector: its slot takes it
  EXPECT_EQ(ReadOk(e.get(), 2 * 512, 512), fine);

  ASSERT_TRUE(e->Flush().ok());
  EXPECT_TRUE(HasEvent(LoadEvents(set.paths.db), EventKind::kSpareExhausted, 4, -1));
}

TEST(EngineSpare, BadSlotIsSkippedAndNeverReused) {
  MemSet set(1 << 20, 8, 512);
  auto e = set.OpenOrDie(QuietOptions());
  AddRule(e.get(), Rule(Device::kSpare, 0, 1, FaultOp::kWrite));
  AddRule(e.get(), Rule(Device::kMain, 10, 1, FaultOp::kWrite));
  const std::string data = Pattern(512, 1);
  WriteOk(e.get(), 10 * 512, data);
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{10, 1}}));
  EXPECT_EQ(ReadOk(e.get(), 10 * 512, 512), data);
  EXPECT_EQ(SlotBytes(set, 0, 512), std::string(512, '\0'));
  Health h = e->GetHealth();
  EXPECT_EQ(h.slots_bad, 1u);
  EXPECT_EQ(h.slots_used, 1u);
  EXPECT_EQ(h.slots_free, 6u);
  EXPECT_EQ(CounterValue(h, Counter::kSpareWriteErrors), 1u);
  EXPECT_EQ(h.State(), "degraded");

  // Using up every slot never hands out slot 0 again.
  AddRule(e.get(), Rule(Device::kMain, 100, 50, FaultOp::kWrite));
  for (uint64_t s = 100; s < 106; ++s) WriteOk(e.get(), s * 512, Pattern(512, s));
  for (const Mapping& m : All(e.get())) EXPECT_NE(m.slot, 0u) << "sector " << m.sector;
  EXPECT_EQ(e->GetHealth().slots_free, 0u);
  EXPECT_EQ(e->Write(106 * 512, 512, data.data()).ToErrno(), EIO);

  ASSERT_TRUE(e->Flush().ok());
  EXPECT_TRUE(HasEvent(LoadEvents(set.paths.db), EventKind::kSlotBad, 10, 0));
}

TEST(EngineSpare, FailingSlotMovesItsSectorToANewSlot) {
  MemSet set(1 << 20, 8, 512);
  auto e = set.OpenOrDie(QuietOptions());
  AddRule(e.get(), Rule(Device::kMain, 10, 1, FaultOp::kWrite));
  const std::string first = Pattern(512, 1);
  WriteOk(e.get(), 10 * 512, first);
  ASSERT_EQ(All(e.get()), (std::vector<Mapping>{{10, 0}}));

  // Slot 0 starts failing writes: a full write moves sector 10 to slot 1.
  AddRule(e.get(), Rule(Device::kSpare, 0, 1, FaultOp::kWrite));
  const std::string second = Pattern(512, 2);
  WriteOk(e.get(), 10 * 512, second);
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{10, 1}}));
  EXPECT_EQ(ReadOk(e.get(), 10 * 512, 512), second);
  EXPECT_EQ(SlotBytes(set, 1, 512), second);

  // Slot 1 fails too: a partial write carries the rest of the sector along.
  AddRule(e.get(), Rule(Device::kSpare, 1, 1, FaultOp::kWrite));
  const std::string part = Pattern(50, 3);
  WriteOk(e.get(), 10 * 512 + 400, part);
  std::string expected = second;
  expected.replace(400, 50, part);
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{10, 2}}));
  EXPECT_EQ(ReadOk(e.get(), 10 * 512, 512), expected);
  EXPECT_EQ(SlotBytes(set, 2, 512), expected);

  Health h = e->GetHealth();
  EXPECT_EQ(h.slots_bad, 2u);
  EXPECT_EQ(h.slots_used, 1u);
  EXPECT_EQ(h.slots_free, 5u);
  EXPECT_EQ(h.remapped_sectors, 1u);
  EXPECT_EQ(CounterValue(h, Counter::kSpareWriteErrors), 2u);
}

TEST(EngineSpare, FailingSlotInsideAMultiSlotRun) {
  MemSet set(1 << 20, 8, 512);
  auto e = set.OpenOrDie(QuietOptions());
  for (uint64_t s : {20, 21, 22}) ASSERT_TRUE(e->Remap(s).ok());
  ASSERT_EQ(All(e.get()), (std::vector<Mapping>{{20, 0}, {21, 1}, {22, 2}}));
  AddRule(e.get(), Rule(Device::kSpare, 1, 1, FaultOp::kWrite));
  const std::string data = Pattern(3 * 512, 4);
  WriteOk(e.get(), 20 * 512, data);
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{20, 0}, {21, 3}, {22, 2}}));
  EXPECT_EQ(ReadOk(e.get(), 20 * 512, data.size()), data);
  EXPECT_EQ(e->GetHealth().slots_bad, 1u);
}

// --------------------------------------------------------------- unremap

TEST(EngineUnremap, CopiesBackAndFreesSlotOnlyAfterFlush) {
  MemSet set(1 << 20, 4, 512);
  auto e = set.OpenOrDie(QuietOptions());
  const uint64_t id = AddRule(e.get(), Rule(Device::kMain, 3, 1, FaultOp::kWrite));
  const std::string data = Pattern(512, 1);
  WriteOk(e.get(), 3 * 512, data);
  ASSERT_EQ(All(e.get()), (std::vector<Mapping>{{3, 0}}));
  ASSERT_EQ(MainBytes(set, 3 * 512, 512), std::string(512, '\0'));

  ASSERT_TRUE(e->RemoveFaultRule(id).ok());  // the disk was repaired
  Status s = e->Unremap(3);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(All(e.get()).empty());
  EXPECT_EQ(MainBytes(set, 3 * 512, 512), data);
  EXPECT_EQ(ReadOk(e.get(), 3 * 512, 512), data);
  Health h = e->GetHealth();
  EXPECT_EQ(h.remapped_sectors, 0u);
  EXPECT_EQ(h.slots_quarantined, 1u);
  EXPECT_EQ(h.slots_free, 3u);
  EXPECT_EQ(h.slots_used, 0u);
  EXPECT_EQ(CounterValue(h, Counter::kUnremaps), 1u);

  // Not durable yet: the slot is not handed out. Fill the other three.
  ASSERT_TRUE(e->Remap(10).ok());
  ASSERT_TRUE(e->Remap(11).ok());
  ASSERT_TRUE(e->Remap(12).ok());
  for (const Mapping& m : All(e.get())) EXPECT_NE(m.slot, 0u);
  EXPECT_EQ(e->Remap(13).ToErrno(), EIO);
  EXPECT_EQ(CounterValue(e->GetHealth(), Counter::kSpareExhausted), 1u);
  EXPECT_EQ(e->GetHealth().slots_quarantined, 1u);
  // The DB still names slot 0 for sector 3 until the flush.
  EXPECT_EQ(LoadSectors(set.paths.db), (std::map<uint64_t, uint32_t>{}));

  ASSERT_TRUE(e->Flush().ok());
  h = e->GetHealth();
  EXPECT_EQ(h.slots_quarantined, 0u);
  EXPECT_EQ(h.slots_free, 1u);
  EXPECT_EQ(LoadSectors(set.paths.db), (std::map<uint64_t, uint32_t>{{10, 1}, {11, 2}, {12, 3}}));
  ASSERT_TRUE(e->Remap(13).ok());
  EXPECT_EQ(e->List(13, 14), (std::vector<Mapping>{{13, 0}}));
  EXPECT_TRUE(HasEvent(LoadEvents(set.paths.db), EventKind::kUnremapped, 3, 0));
}

TEST(EngineUnremap, DestructorMakesTheFreeDurable) {
  // Sector 3 -> slot 0 is durable; it is unremapped, then the engine is
  // destroyed: the destructor's commit makes the free durable, so a new
  // engine sees slot 0 free.
  MemSet set(1 << 20, 2, 512);
  auto e = set.OpenOrDie(QuietOptions());
  ASSERT_TRUE(e->Remap(3).ok());
  ASSERT_TRUE(e->Flush().ok());
  ASSERT_TRUE(e->Unremap(3).ok());
  e.reset();
  e = set.OpenOrDie(QuietOptions());
  Health h = e->GetHealth();
  EXPECT_EQ(h.slots_free, 2u);
  EXPECT_EQ(h.slots_quarantined, 0u);
  EXPECT_TRUE(All(e.get()).empty());
}

TEST(EngineUnremap, KeepsRemapWhileMainStillFails) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  AddRule(e.get(), Rule(Device::kMain, 3, 1, FaultOp::kWrite));
  const std::string data = Pattern(512, 1);
  WriteOk(e.get(), 3 * 512, data);
  Status s = e->Unremap(3);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_EQ(s.ToErrno(), EIO);
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{3, 0}}));
  EXPECT_EQ(ReadOk(e.get(), 3 * 512, 512), data);
  Health h = e->GetHealth();
  EXPECT_EQ(h.slots_used, 1u);
  EXPECT_EQ(h.slots_quarantined, 0u);
  EXPECT_EQ(CounterValue(h, Counter::kUnremaps), 0u);
}

TEST(EngineUnremap, KeepsRemapWhenMainCannotBeReadBack) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  const std::string data = Pattern(512, 1);
  WriteOk(e.get(), 3 * 512, data);
  ASSERT_TRUE(e->Remap(3).ok());
  AddRule(e.get(), Rule(Device::kMain, 3, 1, FaultOp::kRead));
  EXPECT_EQ(e->Unremap(3).ToErrno(), EIO);
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{3, 0}}));
  EXPECT_EQ(ReadOk(e.get(), 3 * 512, 512), data);
}

TEST(EngineUnremap, KeepsRemapWhenSlotIsUnreadable) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  ASSERT_TRUE(e->Remap(3).ok());
  AddRule(e.get(), Rule(Device::kSpare, 0, 1, FaultOp::kRead));
  EXPECT_FALSE(e->Unremap(3).ok());
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{3, 0}}));
}

TEST(EngineUnremap, PendingIsForgottenNormalIsNotFound) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  Status s = e->Unremap(8);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_EQ(e->Unremap(e->sector_count()).code(), Status::Code::kInvalidArgument);

  const std::string data = Pattern(512, 3);
  WriteOk(e.get(), 8 * 512, data);
  ASSERT_TRUE(e->MarkPending(8).ok());
  std::string out(512, '\0');
  ASSERT_EQ(e->Read(8 * 512, 512, out.data()).ToErrno(), EIO);
  ASSERT_TRUE(e->Unremap(8).ok());
  EXPECT_TRUE(All(e.get()).empty());
  EXPECT_EQ(ReadOk(e.get(), 8 * 512, 512), data);
  Health h = e->GetHealth();
  EXPECT_EQ(h.pending_sectors, 0u);
  EXPECT_EQ(h.slots_free, h.slots_total);
  EXPECT_EQ(h.slots_quarantined, 0u);
}

// -------------------------------------------------- manual remap/pending

TEST(EngineManual, RemapCopiesMainToASlot) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  const std::string data = Pattern(512, 1);
  WriteOk(e.get(), 17 * 512, data);
  ASSERT_TRUE(e->Remap(17).ok());
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{17, 0}}));
  EXPECT_EQ(SlotBytes(set, 0, 512), data);
  EXPECT_EQ(ReadOk(e.get(), 17 * 512, 512), data);
  const std::string next = Pattern(512, 2);
  WriteOk(e.get(), 17 * 512, next);
  EXPECT_EQ(ReadOk(e.get(), 17 * 512, 512), next);
  EXPECT_EQ(MainBytes(set, 17 * 512, 512), data);
  EXPECT_EQ(CounterValue(e->GetHealth(), Counter::kRemaps), 1u);
}

TEST(EngineManual, RemapRefusals) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  ASSERT_TRUE(e->Remap(1).ok());
  Status s = e->Remap(1);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  ASSERT_TRUE(e->MarkPending(2).ok());
  s = e->Remap(2);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  s = e->Remap(e->sector_count());
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_EQ(e->Remap(UINT64_MAX).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(e->Remap(e->sector_count() - 1).ok());
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{1, 0}, {2, kPendingSlot}, {e->sector_count() - 1, 1}}));
}

TEST(EngineManual, RemapOfUnreadableSectorFailsAndMakesItPending) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  AddRule(e.get(), Rule(Device::kMain, 9, 1, FaultOp::kRead));
  Status s = e->Remap(9);
  EXPECT_EQ(s.ToErrno(), EIO) << s.ToString();
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{9, kPendingSlot}}));
  EXPECT_EQ(e->GetHealth().slots_used, 0u);
}

TEST(EngineManual, MarkPending) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  ASSERT_TRUE(e->MarkPending(4).ok());
  ASSERT_TRUE(e->MarkPending(4).ok());  // idempotent
  EXPECT_EQ(All(e.get()), (std::vector<Mapping>{{4, kPendingSlot}}));
  EXPECT_EQ(e->GetHealth().pending_sectors, 1u);
  std::string out(512, '\0');
  EXPECT_EQ(e->Read(4 * 512, 512, out.data()).ToErrno(), EIO);

  ASSERT_TRUE(e->Remap(5).ok());
  Status s = e->MarkPending(5);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_EQ(e->List(5, 6), (std::vector<Mapping>{{5, 0}}));
  s = e->MarkPending(e->sector_count());
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_EQ(e->GetHealth().pending_sectors, 1u);
}

TEST(EngineManual, FaultRuleValidation) {
  MemSet set(1 << 20, 8, 512);  // 2048 sectors, 8 slots
  auto e = set.OpenOrDie(QuietOptions());
  FaultRule added;
  EXPECT_EQ(e->AddFaultRule(Rule(Device::kMain, 2048, 1, FaultOp::kRead), &added).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(e->AddFaultRule(Rule(Device::kMain, 2000, 49, FaultOp::kRead), &added).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(e->AddFaultRule(Rule(Device::kSpare, 8, 1, FaultOp::kRead), &added).code(),
            Status::Code::kInvalidArgument);
  EXPECT_TRUE(e->AddFaultRule(Rule(Device::kMain, 2000, 48, FaultOp::kRead), &added).ok());
  EXPECT_TRUE(e->AddFaultRule(Rule(Device::kSpare, 7, 1, FaultOp::kRead), &added).ok());
  EXPECT_EQ(e->ListFaultRules().size(), 2u);
  EXPECT_TRUE(e->RemoveFaultRule(12345).IsNotFound());
  e->ClearFaultRules();
  EXPECT_TRUE(e->ListFaultRules().empty());
}

// ----------------------------------------------------------- concurrency

TEST(EngineConcurrency, WritersOnOneBadSectorAllocateOneSlot) {
  MemSet set(1 << 20, 64, 512);
  auto e = set.OpenOrDie(QuietOptions());
  AddRule(e.get(), Rule(Device::kMain, 5, 1, FaultOp::kWrite));
  constexpr int kThreads = 8, kWrites = 40;
  std::set<std::string> written;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kWrites; ++i) written.insert(Pattern(512, t * 1000 + i));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        const std::string d = Pattern(512, t * 1000 + i);
        if (!e->Write(5 * 512, d.size(), d.data()).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(All(e.get()).size(), 1u);
  Health h = e->GetHealth();
  EXPECT_EQ(h.slots_used, 1u);
  EXPECT_EQ(CounterValue(h, Counter::kRemaps), 1u);
  const std::string last = ReadOk(e.get(), 5 * 512, 512);
  EXPECT_EQ(written.count(last), 1u) << "a torn or invented sector";
}

TEST(EngineConcurrency, ManyBadSectorsManyThreads) {
  MemSet set(1 << 20, 64, 512);
  auto e = set.OpenOrDie(QuietOptions());
  // Every even sector of 0..63 fails writes; threads write overlapping
  // unaligned ranges and readers check their own sectors.
  for (uint64_t s = 0; s < 64; s += 2) AddRule(e.get(), Rule(Device::kMain, s, 1, FaultOp::kWrite));
  constexpr int kThreads = 8;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Thread t owns sectors 8t..8t+7; it writes them whole and in pieces.
      std::string mine = Pattern(8 * 512, t);
      if (!e->Write(t * 8 * 512, mine.size(), mine.data()).ok()) ++failures;
      for (int i = 0; i < 30; ++i) {
        const uint64_t off = (i * 37) % (8 * 512 - 700);
        const std::string d = Pattern(700, t * 100 + i);
        mine.replace(off, d.size(), d);
        if (!e->Write(t * 8 * 512 + off, d.size(), d.data()).ok()) ++failures;
        std::string back(mine.size(), '\0');
        if (!e->Read(t * 8 * 512, back.size(), back.data()).ok() || back != mine) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const std::vector<Mapping> maps = All(e.get());
  ASSERT_EQ(maps.size(), 32u);
  std::set<uint32_t> slots;
  for (const Mapping& m : maps) {
    EXPECT_EQ(m.sector % 2, 0u);
    slots.insert(m.slot);
  }
  EXPECT_EQ(slots.size(), 32u);
  EXPECT_EQ(e->GetHealth().slots_used, 32u);
}

// ------------------------------------------------------------------- log

// A storm of 10,000 remaps logs a bounded number of lines: a burst one by
// one, then summaries whose counts add up to the rest (the last one at
// Close). The events table still has every remap.
TEST(EngineLog, ARemapStormLogsBoundedSummaries) {
  constexpr uint64_t kRemaps = 10'000;
  MemSet set(8 << 20, kRemaps, 512);
  const auto start = std::chrono::steady_clock::now();
  {
    test::LogCapture log;
    auto e = set.OpenOrDie(QuietOptions());
    AddRule(e.get(), Rule(Device::kMain, 0, kRemaps, FaultOp::kWrite));
    const std::string data = Pattern(1 << 20, 1);
    for (uint64_t off = 0; off < kRemaps * 512; off += data.size()) {
      WriteOk(e.get(), off, data.substr(0, std::min<uint64_t>(data.size(), kRemaps * 512 - off)));
    }
    EXPECT_EQ(CounterValue(e->GetHealth(), Counter::kRemaps), kRemaps);
    ASSERT_TRUE(e->Close().ok());
    uint64_t one_by_one = 0, summed = 0, summaries = 0;
    for (const std::string& line : log.Lines()) {
      if (line.find(" remapped to slot ") != std::string::npos) ++one_by_one;
      if (line.find(" more sectors remapped in ") != std::string::npos) {
        summed += std::stoull(line);
        ++summaries;
      }
    }
    EXPECT_EQ(one_by_one + summed, kRemaps) << log.All();
    // At most a burst of 10 and a summary per 10 s interval.
    const auto intervals = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start).count() / 10 + 1);
    EXPECT_LE(one_by_one, 10 * intervals);
    EXPECT_LE(summaries, intervals);
    EXPECT_GE(summaries, 1u);
  }
  std::unique_ptr<MetaStore> meta;
  ASSERT_TRUE(MetaStore::Open(set.paths.db, /*read_only=*/true, &meta).ok());
  std::vector<Event> events;
  ASSERT_TRUE(meta->LoadEvents(2 * kRemaps, &events).ok());
  EXPECT_EQ(std::count_if(events.begin(), events.end(), [](const Event& ev) { return ev.kind == EventKind::kRemapped; }),
            static_cast<long>(kRemaps));
}

// ---------------------------------------------------------- persistence

struct Snapshot {
  std::vector<Mapping> table;
  std::vector<FaultRule> rules;
  std::vector<std::pair<std::string, uint64_t>> counters;
  uint32_t slots_bad, slots_used, slots_free;
  uint64_t pending, remapped;
};

Snapshot Take(Engine* e) {
  Health h = e->GetHealth();
  return {All(e), e->ListFaultRules(), h.counters, h.slots_bad, h.slots_used, h.slots_free,
          h.pending_sectors, h.remapped_sectors};
}

void ExpectSame(const Snapshot& a, const Snapshot& b) {
  EXPECT_EQ(a.table, b.table);
  ASSERT_EQ(a.rules.size(), b.rules.size());
  for (size_t i = 0; i < a.rules.size(); ++i) {
    EXPECT_EQ(a.rules[i].id, b.rules[i].id);
    EXPECT_EQ(a.rules[i].ToString(), b.rules[i].ToString());
  }
  EXPECT_EQ(a.counters, b.counters);
  EXPECT_EQ(a.slots_bad, b.slots_bad);
  EXPECT_EQ(a.slots_used, b.slots_used);
  EXPECT_EQ(a.slots_free, b.slots_free);
  EXPECT_EQ(a.pending, b.pending);
  EXPECT_EQ(a.remapped, b.remapped);
}

// Leaves the engine with remaps, a pending sector, a bad slot, a freed slot,
// rules (one removed) and non-zero counters.
std::string MakeHistory(Engine* e) {
  AddRule(e, Rule(Device::kSpare, 0, 1, FaultOp::kWrite));               // id 1: slot 0 bad
  AddRule(e, Rule(Device::kMain, 10, 2, FaultOp::kWrite));               // id 2
  const uint64_t gone = AddRule(e, Rule(Device::kMain, 50, 1, FaultOp::kRead));  // id 3
  FaultRule slow = Rule(Device::kMain, 60, 5, FaultOp::kBoth, 7);
  slow.probability = 0.25;
  slow.seed = 77;
  slow.delay_ms = 1;
  AddRule(e, slow);  // id 4
  const std::string data = Pattern(4 * 512, 11);
  WriteOk(e, 9 * 512, data);  // 10 -> slot 1, 11 -> slot 2
  std::string out(512, '\0');
  EXPECT_EQ(e->Read(50 * 512, 512, out.data()).ToErrno(), EIO);  // 50 pending
  EXPECT_TRUE(e->RemoveFaultRule(gone).ok());
  EXPECT_TRUE(e->Remap(30).ok());    // slot 3
  EXPECT_TRUE(e->Unremap(30).ok());  // slot 3 freed
  return data;
}

TEST(EnginePersistence, FlushAndCloseKeepEverything) {
  MemSet set(1 << 20, 16, 512);
  auto e = set.OpenOrDie(QuietOptions());
  const std::string data = MakeHistory(e.get());
  ASSERT_TRUE(e->Flush().ok());
  const Snapshot before = Take(e.get());
  EXPECT_EQ(before.slots_bad, 1u);
  EXPECT_EQ(before.pending, 1u);
  EXPECT_EQ(before.remapped, 2u);
  ASSERT_TRUE(e->Close().ok());
  EXPECT_TRUE(e->Close().ok());  // idempotent
  e.reset();

  e = set.OpenOrDie(QuietOptions());
  ExpectSame(before, Take(e.get()));
  EXPECT_TRUE(e->GetHealth().was_clean);
  EXPECT_EQ(ReadOk(e.get(), 9 * 512, data.size()), data);
  std::string out(512, '\0');
  EXPECT_EQ(e->Read(50 * 512, 512, out.data()).ToErrno(), EIO);
  // Fresh rule ids continue after the reloaded ones.
  const uint64_t id = AddRule(e.get(), Rule(Device::kMain, 1, 1, FaultOp::kRead));
  EXPECT_GT(id, 4u);
  // The bad slot 0 stays bad; slot 3, freed durably, is taken again.
  ASSERT_TRUE(e->Remap(40).ok());
  EXPECT_EQ(e->List(40, 41), (std::vector<Mapping>{{40, 3}}));
  // The reloaded rules act: slot 0 still fails writes if it were used, and
  // sector 12 of MAIN (outside rule 2) writes fine while 10 goes to its slot.
  const std::string d = Pattern(512, 5);
  WriteOk(e.get(), 10 * 512, d);
  EXPECT_EQ(SlotBytes(set, 1, 512), d);
}

TEST(EnginePersistence, DestructorClosesAndKeepsEverything) {
  MemSet set(1 << 20, 16, 512);
  auto e = set.OpenOrDie(QuietOptions());
  const std::string data = MakeHistory(e.get());
  // No Flush and no Close: the destructor must do the ordered shutdown.
  const Snapshot before = Take(e.get());
  e.reset();

  e = set.OpenOrDie(QuietOptions());
  Snapshot after = Take(e.get());
  // The unremap's slot was quarantined before; after a durable commit it is
  // free. Everything else is the same.
  EXPECT_EQ(after.slots_free, before.slots_free + 1);
  after.slots_free = before.slots_free;
  ExpectSame(before, after);
  EXPECT_TRUE(e->GetHealth().was_clean);
  EXPECT_EQ(ReadOk(e.get(), 9 * 512, data.size()), data);
  e.reset();

  auto events = LoadEvents(set.paths.db);
  EXPECT_TRUE(HasEvent(events, EventKind::kSlotBad, 10, 0));
  EXPECT_TRUE(HasEvent(events, EventKind::kRemapped, 10, 1));
  EXPECT_TRUE(HasEvent(events, EventKind::kRemapped, 11, 2));
  EXPECT_TRUE(HasEvent(events, EventKind::kPending, 50, -1));
  EXPECT_TRUE(HasEvent(events, EventKind::kRemapped, 30, 3));
  EXPECT_TRUE(HasEvent(events, EventKind::kUnremapped, 30, 3));
  for (size_t i = 1; i < events.size(); ++i) EXPECT_LE(events[i - 1].time_us, events[i].time_us);
}

TEST(EnginePersistence, CountersChangedAfterTheLastCommitSurviveClose) {
  MemSet set(1 << 20, 16, 512);
  auto e = set.OpenOrDie(QuietOptions());
  ASSERT_TRUE(e->Remap(1).ok());
  ASSERT_TRUE(e->Flush().ok());
  // Reads change only counters; nothing else is queued.
  std::string out(4096, '\0');
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(e->Read(0, out.size(), out.data()).ok());
  const Health h = e->GetHealth();
  EXPECT_EQ(CounterValue(h, Counter::kReads), 5u);
  ASSERT_TRUE(e->Close().ok());
  e.reset();
  e = set.OpenOrDie(QuietOptions());
  EXPECT_EQ(e->GetHealth().counters, h.counters);
}

TEST(EnginePersistence, ClearedRulesStayCleared) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  AddRule(e.get(), Rule(Device::kMain, 1, 1, FaultOp::kRead));
  AddRule(e.get(), Rule(Device::kMain, 2, 1, FaultOp::kRead));
  ASSERT_TRUE(e->Flush().ok());
  e->ClearFaultRules();
  const uint64_t id = AddRule(e.get(), Rule(Device::kMain, 3, 1, FaultOp::kWrite));
  e.reset();
  e = set.OpenOrDie(QuietOptions());
  const auto rules = e->ListFaultRules();
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].id, id);
  EXPECT_EQ(rules[0].sectors.first, 3u);
}

// A rule that could never have been added (a damaged or hand-edited DB) is
// reported by check, and dropped at open, from the DB too, instead of being
// obeyed or keeping the set from opening.
TEST(EnginePersistence, InvalidRuleInTheDbIsDropped) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  const uint64_t good = AddRule(e.get(), Rule(Device::kMain, 3, 1, FaultOp::kWrite));
  e.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(set.paths.db.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "INSERT INTO fault_rules VALUES (90, 'main', 0, 0, 'write', 0, 1.0, 0, 0);"
                         "INSERT INTO fault_rules VALUES (91, 'main', 0, 1, 'write', 0, 1.0, 0, 99999999);"
                         "INSERT INTO fault_rules VALUES (92, 'disk', 0, 1, 'write', 0, 1.0, 0, 0);"
                         "INSERT INTO fault_rules VALUES (93, 'main', 0, 1, 'erase', 0, 1.0, 0, 0);"
                         "INSERT INTO fault_rules VALUES (94, 'main', 0, 1, 'write', -1, 1.0, 0, 0);"
                         "INSERT INTO fault_rules VALUES (0, 'disk', 0, 1, 'write', 0, 1.0, 0, 0);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  std::vector<std::string> problems;
  ASSERT_TRUE(CheckSet(&set.env, set.paths, &problems).ok());
  ASSERT_EQ(problems.size(), 6u);
  EXPECT_EQ(problems[0], "fault rule 0 is invalid (id 0 is not positive); the next open of the set drops it");
  EXPECT_NE(problems[3].find("fault rule 92 is invalid (device 'disk' is not main or spare)"), std::string::npos);
  EXPECT_NE(problems[4].find("fault rule 93 is invalid (op 'erase' is not read, write or both)"), std::string::npos);
  e = set.OpenOrDie(QuietOptions());
  auto rules = e->ListFaultRules();
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].id, good);
  ASSERT_TRUE(e->Close().ok());
  std::unique_ptr<MetaStore> meta;
  ASSERT_TRUE(MetaStore::Open(set.paths.db, /*read_only=*/true, &meta).ok());
  rules.clear();
  std::vector<InvalidFaultRule> invalid;
  ASSERT_TRUE(meta->LoadFaultRules(&rules, &invalid).ok());
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].id, good);
  EXPECT_TRUE(invalid.empty());
  meta.reset();
  test::ExpectCheckClean(set);
}

// Clearing and removing rules work while the DB holds a damaged one.
TEST(EnginePersistence, RulesCanBeChangedBesideADamagedOne) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  const uint64_t id = AddRule(e.get(), Rule(Device::kMain, 3, 1, FaultOp::kWrite));
  AddRule(e.get(), Rule(Device::kMain, 4, 1, FaultOp::kWrite));
  e.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(set.paths.db.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO fault_rules VALUES (50, 'disk', 0, 1, 'erase', 0, 1.0, 0, 0);", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  e = set.OpenOrDie(QuietOptions());
  ASSERT_TRUE(e->RemoveFaultRule(id).ok());
  EXPECT_EQ(e->ListFaultRules().size(), 1u);
  e->ClearFaultRules();
  EXPECT_TRUE(e->ListFaultRules().empty());
  ASSERT_TRUE(e->Close().ok());
  std::unique_ptr<MetaStore> meta;
  ASSERT_TRUE(MetaStore::Open(set.paths.db, /*read_only=*/true, &meta).ok());
  std::vector<FaultRule> rules;
  std::vector<InvalidFaultRule> invalid;
  ASSERT_TRUE(meta->LoadFaultRules(&rules, &invalid).ok());
  EXPECT_TRUE(rules.empty());
  EXPECT_TRUE(invalid.empty());
}

TEST(EnginePersistence, FlushMakesTheTableDurableWhileOpen) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  AddRule(e.get(), Rule(Device::kMain, 10, 2, FaultOp::kWrite));
  WriteOk(e.get(), 10 * 512, Pattern(1024, 1));
  ASSERT_TRUE(e->MarkPending(20).ok());
  // The writer has not committed on its own (commit interval: one hour).
  EXPECT_TRUE(LoadSectors(set.paths.db).empty());
  Status s = e->Flush();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(LoadSectors(set.paths.db), (std::map<uint64_t, uint32_t>{{10, 0}, {11, 1}, {20, kPendingSlot}}));
  // The data the mappings point to was synced before: a power cut now keeps
  // the slots' contents.
  const std::string spare = set.env.Contents(set.paths.spare);
  set.env.PowerCut(1, /*tear=*/false);
  EXPECT_EQ(set.env.Contents(set.paths.spare), spare);

  std::unique_ptr<MetaStore> meta;
  ASSERT_TRUE(MetaStore::Open(set.paths.db, true, &meta).ok());
  EXPECT_FALSE(meta->info().clean);  // open engine
  std::vector<FaultRule> rules;
  std::vector<InvalidFaultRule> invalid;
  ASSERT_TRUE(meta->LoadFaultRules(&rules, &invalid).ok());
  EXPECT_EQ(rules.size(), 1u);
}

TEST(EnginePersistence, SecondOpenOfAnOpenSetIsBusy) {
  MemSet set;
  auto e = set.OpenOrDie(QuietOptions());
  std::unique_ptr<Engine> second;
  Status s = set.Open(&second, QuietOptions());
  EXPECT_EQ(s.code(), Status::Code::kBusy) << s.ToString();
  EXPECT_EQ(second, nullptr);
  e.reset();
  EXPECT_TRUE(set.Open(&second, QuietOptions()).ok());
}

}  // namespace
}  // namespace remapfs
