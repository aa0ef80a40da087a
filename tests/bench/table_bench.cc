// remapfs_bench: the figures of the remap table at 1,000,000 remaps.
//   (a) memory per entry of RemapTable (MemoryBytes()/size(), and the growth
//       of the process RSS as a cross-check), sequential and random inserts;
//   (b) lookups: Find of a present and of an absent sector, Collect over a
//       1 MiB request (2048 sectors of 512 B) with no remap in range (the fast
//       path of every request) and with 1, 16 or 256 remaps in range;
//   (c) the load time: Engine::Open (and Close) of a set whose DB holds 1M
//       remaps, after a clean and after an unclean shutdown, and the time to
//       commit 1M changes in one MetaStore::Apply;
//   (d) a spare of 2^32 - 2 slots of 512 bytes (2 TiB, sparse) with 1,000
//       remaps: Engine::Open's time and memory (the slot allocator's must
//       not grow with the spare).
//   (e) a big table: every other sector of an image of 4096-byte sectors
//       remapped, 1M or 10M remaps: the load in sector order and its bytes
//       per remap, the lookup of a 4 KiB request's range, Engine::Read and
//       Write of 4 KiB against the empty table, and Engine::Open (with the
//       SQLite and LoadTable parts of it).
// Sets are real files (sparse) in a temp dir, through Env::Default().
// A summary block is printed at the end; tests/bench/run.sh builds and runs.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "store/backend.h"
#include "store/check.h"
#include "store/engine.h"
#include "store/meta_store.h"
#include "store/remap_table.h"
#include "store/set_format.h"
#include "tests/support/testutil.h"

namespace remapfs {
namespace {

constexpr size_t kEntries = 1'000'000;
constexpr uint32_t kSectorSize = 512;
constexpr uint64_t kRequestSectors = (1 << 20) / kSectorSize;  // a 1 MiB request
// The sector space of the random remaps: a 2 TiB disk of 512-byte sectors.
// 1M remaps over it leave about half of the 1 MiB ranges without a remap.
constexpr uint64_t kDiskSectors = uint64_t{1} << 32;

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

size_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

// n distinct sectors in [0, space), in random order.
std::vector<uint64_t> RandomDistinct(size_t n, uint64_t space, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint64_t> dist(0, space - 1);
  std::vector<uint64_t> v;
  v.reserve(n + n / 8);
  while (v.size() < n) {
    for (size_t i = v.size(); i < n; ++i) v.push_back(dist(rng));
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "remapfs_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

// ---------------------------------------------------------------------------
// (a) Memory per entry.

// Arg 0: sequential inserts (sectors in ascending order), 1: random order.
void BM_TableMemory(benchmark::State& state) {
  const bool random = state.range(0) != 0;
  std::vector<uint64_t> keys = RandomDistinct(kEntries, kDiskSectors, 1);
  if (!random) std::sort(keys.begin(), keys.end());
  double bytes = 0, rss = 0, entries = 0;
  for (auto _ : state) {
    state.PauseTiming();
    ::malloc_trim(0);
    const size_t rss0 = RssBytes();
    auto table = std::make_unique<RemapTable>();
    state.ResumeTiming();
    for (size_t i = 0; i < keys.size(); ++i) table->Set(keys[i], static_cast<uint32_t>(i));
    state.PauseTiming();
    const size_t rss1 = RssBytes();
    bytes = static_cast<double>(table->MemoryBytes());
    entries = static_cast<double>(table->size());
    rss = static_cast<double>(rss1 > rss0 ? rss1 - rss0 : 0);
    table.reset();
    ::malloc_trim(0);
    state.ResumeTiming();
  }
  if (entries != kEntries) state.SkipWithError("the table lost entries");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kEntries));
  state.counters["entries"] = entries;
  state.counters["B/entry"] = bytes / entries;
  state.counters["RSS_B/entry"] = rss / entries;
}
BENCHMARK(BM_TableMemory)->ArgName("random")->Arg(0)->Arg(1)->Iterations(3)->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// (b) Lookups in a table of 1M remaps at random sectors, inserted in random
// order (its leaves are about 70% full: the larger, slower layout; a table
// loaded at open is filled in sector order and packed).

struct LookupSet {
  RemapTable table;
  std::vector<uint64_t> present;       // every mapped sector, random order
  std::vector<uint64_t> absent;        // unmapped sectors, random
  std::vector<uint64_t> empty_ranges;  // first sectors of 1 MiB ranges without a remap
};

const LookupSet& Lookups() {
  static const LookupSet* set = [] {
    auto* s = new LookupSet;
    s->present = RandomDistinct(kEntries, kDiskSectors, 2);
    for (size_t i = 0; i < s->present.size(); ++i) s->table.Set(s->present[i], static_cast<uint32_t>(i));
    std::mt19937_64 rng(3);
    std::uniform_int_distribution<uint64_t> dist(0, kDiskSectors - kRequestSectors);
    std::vector<Mapping> out;
    while (s->absent.size() < kEntries) {
      const uint64_t sector = dist(rng);
      if (!s->table.Find(sector)) s->absent.push_back(sector);
    }
    while (s->empty_ranges.size() < (1 << 16)) {
      const uint64_t first = dist(rng);
      out.clear();
      s->table.Collect(first, first + kRequestSectors, &out);
      if (out.empty()) s->empty_ranges.push_back(first);
    }
    return s;
  }();
  return *set;
}

void BM_FindHit(benchmark::State& state) {
  const LookupSet& s = Lookups();
  size_t i = 0, misses = 0;
  for (auto _ : state) {
    std::optional<uint32_t> slot = s.table.Find(s.present[i]);
    misses += !slot;
    benchmark::DoNotOptimize(slot);
    if (++i == s.present.size()) i = 0;
  }
  if (misses != 0) state.SkipWithError("Find missed a present sector");
  state.counters["entries"] = static_cast<double>(s.table.size());
}
BENCHMARK(BM_FindHit);

void BM_FindMiss(benchmark::State& state) {
  const LookupSet& s = Lookups();
  size_t i = 0, hits = 0;
  for (auto _ : state) {
    std::optional<uint32_t> slot = s.table.Find(s.absent[i]);
    hits += slot.has_value();
    benchmark::DoNotOptimize(slot);
    if (++i == s.absent.size()) i = 0;
  }
  if (hits != 0) state.SkipWithError("Find found an absent sector");
  state.counters["entries"] = static_cast<double>(s.table.size());
}
BENCHMARK(BM_FindMiss);

// The fast path: a 1 MiB request that touches no remapped sector.
void BM_CollectEmpty(benchmark::State& state) {
  const LookupSet& s = Lookups();
  std::vector<Mapping> out;
  out.reserve(kRequestSectors);
  size_t i = 0, found = 0;
  for (auto _ : state) {
    out.clear();
    const uint64_t first = s.empty_ranges[i];
    s.table.Collect(first, first + kRequestSectors, &out);
    found += out.size();
    benchmark::DoNotOptimize(out.data());
    if (++i == s.empty_ranges.size()) i = 0;
  }
  if (found != 0) state.SkipWithError("Collect found a remap in an empty range");
  state.counters["entries"] = static_cast<double>(s.table.size());
}
BENCHMARK(BM_CollectEmpty);

// A 1 MiB request with Arg remapped sectors in it: 1M remaps in clusters of
// Arg, each cluster at random sectors of one random 1 MiB range.
struct ClusterSet {
  RemapTable table;
  std::vector<uint64_t> ranges;  // first sectors of the ranges, random order
};

const ClusterSet& Clusters(size_t per_range) {
  static std::map<size_t, std::unique_ptr<ClusterSet>> sets;
  auto& s = sets[per_range];
  if (s) return *s;
  s = std::make_unique<ClusterSet>();
  std::vector<uint64_t> windows = RandomDistinct(kEntries / per_range, kDiskSectors / kRequestSectors, 4);
  std::mt19937_64 rng(5);
  std::vector<uint32_t> offsets(kRequestSectors);
  std::vector<uint64_t> sectors;
  sectors.reserve(kEntries);
  for (uint64_t w : windows) {
    std::iota(offsets.begin(), offsets.end(), 0);
    for (size_t k = 0; k < per_range; ++k) {  // a partial Fisher-Yates shuffle
      std::swap(offsets[k], offsets[k + rng() % (kRequestSectors - k)]);
      sectors.push_back(w * kRequestSectors + offsets[k]);
    }
    s->ranges.push_back(w * kRequestSectors);
  }
  std::shuffle(sectors.begin(), sectors.end(), rng);
  for (size_t i = 0; i < sectors.size(); ++i) s->table.Set(sectors[i], static_cast<uint32_t>(i));
  return *s;
}

void BM_CollectSome(benchmark::State& state) {
  const size_t per_range = static_cast<size_t>(state.range(0));
  const ClusterSet& s = Clusters(per_range);
  std::vector<Mapping> out;
  out.reserve(kRequestSectors);
  size_t i = 0, wrong = 0;
  for (auto _ : state) {
    out.clear();
    const uint64_t first = s.ranges[i];
    s.table.Collect(first, first + kRequestSectors, &out);
    wrong += out.size() != per_range;
    benchmark::DoNotOptimize(out.data());
    if (++i == s.ranges.size()) i = 0;
  }
  if (wrong != 0) state.SkipWithError("Collect returned the wrong number of remaps");
  state.counters["entries"] = static_cast<double>(s.table.size());
}
BENCHMARK(BM_CollectSome)->ArgName("remaps")->Arg(1)->Arg(16)->Arg(256);

// ---------------------------------------------------------------------------
// (c) A set whose DB holds 1M remaps.

// MAIN: a sparse 1 TiB file (2^31 sectors of 512 B); SPARE: sparse, room for
// kEntries + 16 slots.
constexpr uint64_t kMainSectors = uint64_t{1} << 31;

struct BigSet {
  test::TempDir dir;
  SetPaths paths{dir.File("main.img"), dir.File("spare.img"), dir.File("set.db")};
};

// Makes a set of MAIN main_sectors sectors of sector_size bytes, with a
// slot for each of `sectors`, and commits their remaps (slots 0, 1, ... in
// the order given) in MetaStore::Apply calls of up to kEntries changes.
// *apply_s: the time of the Applies; *close_s: closing the MetaStore
// afterwards (SQLite checkpoints the WAL into the DB then).
std::unique_ptr<BigSet> MakeSet(uint32_t sector_size, uint64_t main_sectors, const std::vector<uint64_t>& sectors,
                                double* apply_s, double* close_s) {
  auto set = std::make_unique<BigSet>();
  Env* env = Env::Default();
  Status s = env->CreateFile(set->paths.main, main_sectors * sector_size);
  if (!s.ok()) Die("create MAIN", s);
  s = CreateSet(env, set->paths, {sector_size, kSpareHeaderSize + (sectors.size() + 16) * sector_size});
  if (!s.ok()) Die("create set", s);
  std::unique_ptr<MetaStore> meta;
  s = MetaStore::Open(set->paths.db, /*read_only=*/false, &meta);
  if (!s.ok()) Die("open DB", s);
  *apply_s = 0;
  std::vector<Change> changes;
  for (size_t begin = 0; begin < sectors.size(); begin += kEntries) {
    const size_t end = std::min(sectors.size(), begin + kEntries);
    changes.clear();
    for (size_t i = begin; i < end; ++i) changes.emplace_back(PutSector{sectors[i], static_cast<uint32_t>(i)});
    auto t = Clock::now();
    s = meta->Apply(changes, {});
    *apply_s += SecondsSince(t);
    if (!s.ok()) Die("apply " + std::to_string(changes.size()) + " changes", s);
  }
  auto t = Clock::now();
  meta.reset();
  *close_s = SecondsSince(t);
  return set;
}

// A set of kMainSectors with kEntries remaps at random sectors, committed in
// random order.
std::unique_ptr<BigSet> MakeBigSet(double* apply_s, double* close_s) {
  return MakeSet(kSectorSize, kMainSectors, RandomDistinct(kEntries, kMainSectors, 6), apply_s, close_s);
}

std::unique_ptr<BigSet>& SharedBigSet() {
  static std::unique_ptr<BigSet> set;
  return set;
}

void BM_Apply1M(benchmark::State& state) {
  double apply = 0, close = 0;
  for (auto _ : state) {
    std::unique_ptr<BigSet> set = MakeBigSet(&apply, &close);
    state.SetIterationTime(apply);
    if (!SharedBigSet()) SharedBigSet() = std::move(set);  // reused by BM_EngineOpen
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kEntries));
  state.counters["changes"] = kEntries;
  state.counters["close_s"] = close;
}
BENCHMARK(BM_Apply1M)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

// Engine::Open of the 1M-remap set. Arg 0: after a clean shutdown; 1: after
// an unclean one (Open then runs PRAGMA quick_check too). The manual time is
// Open's; close_s is the Close that follows, RSS_MB what the open engine holds.
void BM_EngineOpen(benchmark::State& state) {
  const bool unclean = state.range(0) != 0;
  if (!SharedBigSet()) {
    double apply = 0, close = 0;
    SharedBigSet() = MakeBigSet(&apply, &close);
  }
  const SetPaths& paths = SharedBigSet()->paths;
  double close_total = 0, rss_total = 0;
  size_t remaps = 0;
  for (auto _ : state) {
    if (unclean) {
      std::unique_ptr<MetaStore> meta;
      Status s = MetaStore::Open(paths.db, /*read_only=*/false, &meta);
      if (s.ok()) s = meta->SetClean(false);
      if (!s.ok()) Die("mark the DB unclean", s);
    }
    ::malloc_trim(0);
    const size_t rss0 = RssBytes();
    std::unique_ptr<Engine> engine;
    auto t = Clock::now();
    Status s = Engine::Open(paths, EngineOptions{}, &engine);
    const double open_s = SecondsSince(t);
    if (!s.ok()) Die("Engine::Open", s);
    const size_t rss1 = RssBytes();
    const Health h = engine->GetHealth();
    remaps = h.remapped_sectors + h.pending_sectors;
    t = Clock::now();
    s = engine->Close();
    close_total += SecondsSince(t);
    if (!s.ok()) Die("Engine::Close", s);
    engine.reset();
    state.SetIterationTime(open_s);
    rss_total += static_cast<double>(rss1 > rss0 ? rss1 - rss0 : 0);
  }
  if (remaps != kEntries) state.SkipWithError("the engine did not load every remap");
  const double n = static_cast<double>(state.iterations());
  state.counters["remaps"] = static_cast<double>(remaps);
  state.counters["close_s"] = close_total / n;
  state.counters["RSS_MB"] = rss_total / n / 1e6;
}
BENCHMARK(BM_EngineOpen)->ArgName("unclean")->Arg(0)->Arg(1)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// (d) A huge spare with few remaps.

constexpr uint32_t kHugeSpareSlots = UINT32_MAX - 1;  // 2^32 - 2
constexpr size_t kHugeSpareRemaps = 1000;

// The set is written here, not by CreateSet, which would reserve the 2 TiB
// of SPARE: a sparse SPARE with its header, and a DB with kHugeSpareRemaps
// remaps in slots 0 .. kHugeSpareRemaps - 1. MAIN's identity is recorded by
// the first open.
std::unique_ptr<BigSet> MakeHugeSpareSet() {
  auto set = std::make_unique<BigSet>();
  Env* env = Env::Default();
  constexpr uint64_t kMainSize = uint64_t{1} << 30;
  SetInfo info;
  info.uuid = NewUuid();
  info.sector_size = kSectorSize;
  info.main_size = kMainSize;
  info.main_path = set->paths.main;
  info.spare_path = set->paths.spare;
  info.slot_count = kHugeSpareSlots;
  Status s = env->CreateFile(set->paths.main, kMainSize);
  if (s.ok()) s = env->CreateFile(set->paths.spare, SlotOffset(kHugeSpareSlots, kSectorSize));
  std::unique_ptr<Backend> spare;
  if (s.ok()) s = env->OpenBackend(set->paths.spare, BackendOptions{}, &spare);
  const std::string header =
      EncodeSpareHeader({info.uuid, info.sector_size, info.slot_count, info.main_size, info.created_us});
  if (s.ok()) s = spare->WriteAt(0, header.size(), header.data());
  if (s.ok()) s = MetaStore::Create(set->paths.db, info);
  std::unique_ptr<MetaStore> meta;
  if (s.ok()) s = MetaStore::Open(set->paths.db, /*read_only=*/false, &meta);
  std::vector<Change> changes;
  for (size_t i = 0; i < kHugeSpareRemaps; ++i) changes.emplace_back(PutSector{i * 1000, static_cast<uint32_t>(i)});
  if (s.ok()) s = meta->Apply(changes, {});
  if (!s.ok()) Die("make a set with a huge spare", s);
  return set;
}

// The manual time is Engine::Open's; RSS_MB what the open engine holds.
void BM_HugeSpareOpen(benchmark::State& state) {
  const std::unique_ptr<BigSet> set = MakeHugeSpareSet();
  double rss_total = 0;
  uint64_t slots = 0, used = 0;
  for (auto _ : state) {
    ::malloc_trim(0);
    const size_t rss0 = RssBytes();
    std::unique_ptr<Engine> engine;
    auto t = Clock::now();
    Status s = Engine::Open(set->paths, EngineOptions{}, &engine);
    const double open_s = SecondsSince(t);
    if (!s.ok()) Die("Engine::Open", s);
    const size_t rss1 = RssBytes();
    const Health h = engine->GetHealth();
    slots = h.slots_total;
    used = h.slots_used;
    s = engine->Close();
    if (!s.ok()) Die("Engine::Close", s);
    engine.reset();
    state.SetIterationTime(open_s);
    rss_total += static_cast<double>(rss1 > rss0 ? rss1 - rss0 : 0);
  }
  if (slots != kHugeSpareSlots || used != kHugeSpareRemaps) state.SkipWithError("the engine saw another spare");
  state.counters["slots"] = static_cast<double>(slots);
  state.counters["used"] = static_cast<double>(used);
  state.counters["RSS_MB"] = rss_total / static_cast<double>(state.iterations()) / 1e6;
}
BENCHMARK(BM_HugeSpareOpen)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// (e) A big table costs nothing: the layout of the fio comparison of
// tests/bench/big_table.sh. Every other sector of an image is remapped, and
// the I/O goes to its first eighth (the first GiB of 8 GiB: 4096-byte
// sectors, 2M of them, 1M remapped). Arg: the number of remaps, 0 for the
// empty table (over the image of 1M remaps).

constexpr uint32_t kBigSectorSize = 4096;

// The image of `remaps` (every other sector remapped), in sectors.
uint64_t ImageSectors(size_t remaps) { return 2 * std::max(remaps, kEntries); }

// The remapped sectors: 0, 2, 4, ...
std::vector<uint64_t> EveryOtherSector(size_t remaps) {
  std::vector<uint64_t> sectors(remaps);
  for (size_t i = 0; i < remaps; ++i) sectors[i] = 2 * i;
  return sectors;
}

// 2^20 random sectors in [0, space).
std::vector<uint64_t> RandomSectors(uint64_t space, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> v(1 << 20);
  for (uint64_t& s : v) s = rng() % space;
  return v;
}

// Filled as LoadTable fills it at open: in sector order.
const RemapTable& EveryOtherTable(size_t remaps) {
  static std::map<size_t, std::unique_ptr<RemapTable>> tables;
  std::unique_ptr<RemapTable>& t = tables[remaps];
  if (!t) {
    t = std::make_unique<RemapTable>();
    for (size_t i = 0; i < remaps; ++i) t->Set(2 * i, static_cast<uint32_t>(i));
  }
  return *t;
}

void BM_BigTableLoad(benchmark::State& state) {
  const size_t remaps = static_cast<size_t>(state.range(0));
  double bytes = 0;
  for (auto _ : state) {
    auto t = std::make_unique<RemapTable>();
    for (size_t i = 0; i < remaps; ++i) t->Set(2 * i, static_cast<uint32_t>(i));
    state.PauseTiming();
    bytes = static_cast<double>(t->MemoryBytes());
    t.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * remaps));
  state.counters["B/entry"] = bytes / static_cast<double>(remaps);
}
BENCHMARK(BM_BigTableLoad)
    ->ArgName("remaps")
    ->Arg(1'000'000)
    ->Arg(10'000'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// What Engine::RunsFor asks of the table for a 4 KiB request: the entries of
// one sector, over the first eighth of the image (arg 1: over all of it).
void BM_BigTableRange(benchmark::State& state) {
  const size_t remaps = static_cast<size_t>(state.range(0));
  const RemapTable& t = EveryOtherTable(remaps);
  const std::vector<uint64_t> sectors = RandomSectors(ImageSectors(remaps) / (state.range(1) ? 1 : 8), 7);
  size_t i = 0, found = 0;
  for (auto _ : state) {
    t.ForEachIn(sectors[i], sectors[i] + 1, [&found](const Mapping&) { ++found; });
    if (++i == sectors.size()) i = 0;
  }
  benchmark::DoNotOptimize(found);
  state.counters["entries"] = static_cast<double>(t.size());
}
BENCHMARK(BM_BigTableRange)->ArgNames({"remaps", "whole"})->ArgsProduct({{0, 1'000'000, 10'000'000}, {0, 1}});

// An engine over the image of 1M remaps (or none); in TMPDIR.
struct BigEngine {
  std::unique_ptr<BigSet> set;
  std::unique_ptr<Engine> engine;
};

Engine* EveryOtherEngine(size_t remaps) {
  static std::map<size_t, BigEngine> engines;
  BigEngine& e = engines[remaps];
  if (!e.engine) {
    double apply = 0, close = 0;
    e.set = MakeSet(kBigSectorSize, ImageSectors(remaps), EveryOtherSector(remaps), &apply, &close);
    // CreateSet reserves SPARE; reserve the first eighth of MAIN too, so that
    // reads find pages in both (a sparse file's holes are cheaper to read
    // on tmpfs, which would count against the remaps).
    const int fd = ::open(e.set->paths.main.c_str(), O_WRONLY | O_CLOEXEC);
    const int err =
        fd < 0 ? errno : ::posix_fallocate(fd, 0, static_cast<off_t>(ImageSectors(remaps) / 8 * kBigSectorSize));
    if (fd >= 0) ::close(fd);
    if (err != 0) Die("reserve MAIN", Status::IOError(std::string("posix_fallocate: ") + std::strerror(err), err));
    Status s = Engine::Open(e.set->paths, EngineOptions{}, &e.engine);
    if (!s.ok()) Die("Engine::Open", s);
  }
  return e.engine.get();
}

// Engine::Read (arg 1: Write) of 4 KiB at random sectors of the first GiB:
// the daemon's side of big_table.sh's fio jobs, without FUSE and with the
// images in the page cache.
void BM_BigTableEngineIo(benchmark::State& state) {
  const size_t remaps = static_cast<size_t>(state.range(0));
  const bool write = state.range(1) != 0;
  Engine* engine = EveryOtherEngine(remaps);
  const std::vector<uint64_t> sectors = RandomSectors(ImageSectors(remaps) / 8, 8);
  std::vector<char> buf(kBigSectorSize, 'x');
  size_t i = 0;
  for (auto _ : state) {
    const uint64_t offset = sectors[i] * kBigSectorSize;
    Status s = write ? engine->Write(offset, buf.size(), buf.data()) : engine->Read(offset, buf.size(), buf.data());
    if (!s.ok()) Die("engine I/O", s);
    if (++i == sectors.size()) i = 0;
  }
}
BENCHMARK(BM_BigTableEngineIo)->ArgNames({"remaps", "write"})->ArgsProduct({{0, 1'000'000}, {0, 1}});

// Engine::Open of a set with `remaps` (every other sector), after a clean
// shutdown; of 512-byte sectors, for a SPARE of 10M slots that is 5 GB
// rather than 40 (CreateSet reserves it). Counters: the time of MetaStore's read of
// the rows alone (sqlite_s), LoadTable's (load_s, with the slot allocator's
// part), and the table's bytes per remap.
void BM_BigTableOpen(benchmark::State& state) {
  const size_t remaps = static_cast<size_t>(state.range(0));
  double apply = 0, close = 0;
  const std::unique_ptr<BigSet> set =
      MakeSet(kSectorSize, ImageSectors(remaps), EveryOtherSector(remaps), &apply, &close);
  double sqlite_s = 0, load_s = 0, bytes = 0;
  for (auto _ : state) {
    std::unique_ptr<MetaStore> meta;
    Status s = MetaStore::Open(set->paths.db, /*read_only=*/true, &meta);
    auto t = Clock::now();
    size_t rows = 0;
    if (s.ok()) s = meta->LoadSectors([&rows](uint64_t, uint32_t) { ++rows; });
    sqlite_s = SecondsSince(t);
    {
      RemapTable table;
      SlotAllocator alloc(meta->info().slot_count);
      std::vector<std::string> problems;
      t = Clock::now();
      if (s.ok()) s = LoadTable(meta.get(), &table, &alloc, &problems);
      load_s = SecondsSince(t);
    }
    meta.reset();
    if (!s.ok() || rows != remaps) Die("read the rows", s);
    std::unique_ptr<Engine> engine;
    t = Clock::now();
    s = Engine::Open(set->paths, EngineOptions{}, &engine);
    state.SetIterationTime(SecondsSince(t));
    if (!s.ok()) Die("Engine::Open", s);
    bytes = static_cast<double>(engine->GetHealth().table_bytes);
    s = engine->Close();
    if (!s.ok()) Die("Engine::Close", s);
  }
  state.counters["sqlite_s"] = sqlite_s;
  state.counters["load_s"] = load_s;
  state.counters["B/remap"] = bytes / static_cast<double>(remaps);
}
BENCHMARK(BM_BigTableOpen)
    ->ArgName("remaps")
    ->Arg(1'000'000)
    ->Arg(10'000'000)
    ->UseManualTime()
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// The summary: the console table as usual, then the headline figures.

class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  struct Result {
    double seconds = 0;  // real time per iteration
    benchmark::UserCounters counters;
  };

  // Colours only on a terminal (a custom reporter does not see --benchmark_color).
  SummaryReporter() : ConsoleReporter(::isatty(STDOUT_FILENO) ? OO_ColorTabular : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.error_occurred || r.run_type != Run::RT_Iteration) continue;
      std::string key = r.run_name.function_name;
      if (!r.run_name.args.empty()) key += "/" + r.run_name.args;
      results_[key] = {r.GetAdjustedRealTime() / benchmark::GetTimeUnitMultiplier(r.time_unit), r.counters};
    }
  }

  void PrintSummary() const {
    std::printf("\n== remapfs table summary (%zu remaps, %u-byte sectors, 1 MiB = %llu sectors) ==\n", kEntries,
                kSectorSize, static_cast<unsigned long long>(kRequestSectors));
    Line("memory/entry (sequential inserts)", "BM_TableMemory/random:0", [](const Result& r) {
      return Fmt("%.1f B (RSS growth %.1f B)", r.counters.at("B/entry").value, r.counters.at("RSS_B/entry").value);
    });
    Line("memory/entry (random inserts)", "BM_TableMemory/random:1", [](const Result& r) {
      return Fmt("%.1f B (RSS growth %.1f B)", r.counters.at("B/entry").value, r.counters.at("RSS_B/entry").value);
    });
    Line("insert, sequential", "BM_TableMemory/random:0", PerEntry);
    Line("insert, random", "BM_TableMemory/random:1", PerEntry);
    Line("Find hit", "BM_FindHit", Nanos);
    Line("Find miss", "BM_FindMiss", Nanos);
    Line("Collect 1 MiB, no remap (fast path)", "BM_CollectEmpty", Nanos);
    Line("Collect 1 MiB, 1 remap", "BM_CollectSome/remaps:1", Nanos);
    Line("Collect 1 MiB, 16 remaps", "BM_CollectSome/remaps:16", Nanos);
    Line("Collect 1 MiB, 256 remaps", "BM_CollectSome/remaps:256", Nanos);
    Line("MetaStore::Apply of 1M changes", "BM_Apply1M", [](const Result& r) {
      return Fmt("%.2f s (then DB close/checkpoint %.2f s)", r.seconds, r.counters.at("close_s").value);
    });
    Line("Engine::Open with 1M remaps", "BM_EngineOpen/unclean:0", [](const Result& r) {
      return Fmt("%.2f s (Close %.2f s, engine RSS %.0f MB)", r.seconds, r.counters.at("close_s").value,
                 r.counters.at("RSS_MB").value);
    });
    Line("Engine::Open with 1M remaps, unclean", "BM_EngineOpen/unclean:1",
         [](const Result& r) { return Fmt("%.2f s (with quick_check)", r.seconds); });
    Line("Engine::Open, 2^32-2 slots, 1000 used", "BM_HugeSpareOpen", [](const Result& r) {
      return Fmt("%.3f s (engine RSS %.1f MB)", r.seconds, r.counters.at("RSS_MB").value);
    });
    std::printf("\n== a big table (every other sector remapped, 4096-byte sectors, I/O over the first eighth) ==\n");
    for (const char* n : {"1000000", "10000000"}) {
      Line(Fmt("load %s remaps in sector order", n).c_str(), Fmt("BM_BigTableLoad/remaps:%s", n), [](const Result& r) {
        return Fmt("%.3f s, %.2f B/remap", r.seconds, r.counters.at("B/entry").value);
      });
    }
    for (const char* n : {"0", "1000000", "10000000"}) {
      Line(Fmt("4 KiB range lookup, %s remaps", n).c_str(), Fmt("BM_BigTableRange/remaps:%s/whole:0", n), Nanos);
      Line("  over the whole image", Fmt("BM_BigTableRange/remaps:%s/whole:1", n), Nanos);
    }
    for (const char* op : {"read", "write"}) {
      const std::string w = op[0] == 'w' ? "1" : "0";
      auto empty = results_.find("BM_BigTableEngineIo/remaps:0/write:" + w);
      auto big = results_.find("BM_BigTableEngineIo/remaps:1000000/write:" + w);
      if (empty == results_.end() || big == results_.end()) continue;
      std::printf("%-38s %.0f ns empty, %.0f ns with 1M remaps: %.2fx\n", Fmt("Engine 4 KiB %s:", op).c_str(),
                  empty->second.seconds * 1e9, big->second.seconds * 1e9, empty->second.seconds / big->second.seconds);
    }
    for (const char* n : {"1000000", "10000000"}) {
      Line(Fmt("Engine::Open, %s remaps", n).c_str(), Fmt("BM_BigTableOpen/remaps:%s", n), [](const Result& r) {
        return Fmt("%.2f s (rows from SQLite %.2f s, LoadTable %.2f s), table %.2f B/remap", r.seconds,
                   r.counters.at("sqlite_s").value, r.counters.at("load_s").value, r.counters.at("B/remap").value);
      });
    }
  }

 private:
  __attribute__((format(printf, 1, 2))) static std::string Fmt(const char* fmt, ...) {
    char buf[160];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
  }
  static std::string Nanos(const Result& r) { return Fmt("%.0f ns", r.seconds * 1e9); }
  static std::string PerEntry(const Result& r) { return Fmt("%.0f ns/entry", r.seconds * 1e9 / kEntries); }

  template <typename Fn>
  void Line(const char* label, const std::string& key, Fn fn) const {
    auto it = results_.find(key);
    if (it == results_.end()) return;  // filtered out or failed
    std::printf("%-38s %s\n", (std::string(label) + ":").c_str(), fn(it->second).c_str());
  }

  std::map<std::string, Result> results_;
};

}  // namespace
}  // namespace remapfs

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::err);  // no "opened set" lines between the rows
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  remapfs::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  remapfs::SharedBigSet().reset();
  benchmark::Shutdown();
  return 0;
}
