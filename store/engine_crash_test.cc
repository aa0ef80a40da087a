// Crash-order tests: the durability contract of DESIGN.md (durability 1-4)
// under simulated power loss. An engine runs random writes (MAIN write
// fault rules force remaps, SPARE write rules make slots bad), unremaps and
// flushes; then it is dropped without an orderly stop
// (Engine::AbandonForTest, as `kill -9`) and MemEnv::PowerCut drops or tears
// every MAIN and SPARE write not followed by a sync. The DB is a real SQLite
// file: its commits are durable, the rest of it is what the crash left.
//
// After the reopen, each 512-byte block of the image must read as it was at
// the last successful Flush, or as one of the versions written after that
// flush (a write not yet flushed may be lost or torn, at 512-byte
// granularity as a disk may tear it). Every write carries fresh bytes, so a
// mapping that became durable before its slot's data would show as a block
// that was never written. And the set passes `remapctl check`.
//
// Reproduce or lengthen a run:
//   REMAPFS_CRASH_SEED=S     run seed S only (with REMAPFS_CRASH_SEEDS=N:
//                            seeds S, ..., S+N-1)
//   REMAPFS_CRASH_CYCLES=N   power cuts per seed (default 40)
//   REMAPFS_CRASH_VERBOSE=1  one summary line per seed
// Half the cycles also commit in the background every 1-20 ms, so a seed
// replays its operations exactly but not always the commit points.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "store/check.h"
#include "store/testutil.h"

namespace remapfs {
namespace {

constexpr uint64_t kBlock = 512;  // MemEnv's tear granularity


void ExpectCheckClean(test::MemSet& set) {
  std::vector<std::string> problems;
  Status s = CheckSet(&set.env, set.paths, &problems);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(problems.empty()) << problems.size() << " problem(s), first: " << problems.front();
}

std::string ReadAll(Engine* e) {
  std::string out(e->size(), '\0');
  Status s = e->Read(0, out.size(), out.data());
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

// What a crash may leave of the image: per 512-byte block, the content at
// the last successful flush, or any content the block had after a write
// since then.
class Reference {
 public:
  explicit Reference(size_t size) : cur_(size, '\0'), flushed_(size, '\0'), since_(size / kBlock) {}

  void Wrote(uint64_t off, const std::string& data) {
    std::memcpy(cur_.data() + off, data.data(), data.size());
    for (uint64_t b = off / kBlock; b * kBlock < off + data.size(); ++b) {
      since_[b].push_back(cur_.substr(b * kBlock, kBlock));
    }
  }
  // Everything written so far is durable.
  void Durable() {
    flushed_ = cur_;
    for (auto& v : since_) v.clear();
  }
  const std::string& current() const { return cur_; }

  // Checks what the image reads as after a crash, then takes it as the new
  // durable state.
  void CheckAfterCrash(const std::string& got, uint32_t sector_size, const std::vector<Mapping>& table) {
    ASSERT_EQ(got.size(), cur_.size());
    for (uint64_t b = 0; b < since_.size(); ++b) {
      const std::string_view block(got.data() + b * kBlock, kBlock);
      if (block == std::string_view(flushed_).substr(b * kBlock, kBlock)) continue;
      bool found = false;
      for (const std::string& v : since_[b]) found = found || block == v;
      if (found) continue;
      const uint64_t sector = b * kBlock / sector_size;
      std::string where = "MAIN";
      for (const Mapping& m : table) {
        if (m.sector == sector) where = m.pending() ? "pending" : "slot " + std::to_string(m.slot);
      }
      FAIL() << "block " << b << " (sector " << sector << ", served from " << where
             << ") reads as neither its flushed content nor anything written since (" << since_[b].size()
             << " write(s) since the flush): a mapping became durable before its data, or flushed data was lost";
    }
    cur_ = got;
    Durable();
  }

 private:
  std::string cur_;
  std::string flushed_;
  std::vector<std::vector<std::string>> since_;
};

struct CrashConfig {
  uint32_t sector_size;
  uint64_t sectors;
  uint32_t slots;
};

class CrashRun {
 public:
  CrashRun(const CrashConfig& cfg, uint64_t seed)
      : cfg_(cfg), rng_(seed), set_(cfg.sectors * cfg.sector_size, cfg.slots, cfg.sector_size),
        ref_(cfg.sectors * cfg.sector_size) {}

  void Run(uint64_t cycles) {
    for (cycle_ = 0; cycle_ < cycles; ++cycle_) ASSERT_NO_FATAL_FAILURE(Cycle());
    // A last orderly open and close.
    ASSERT_NO_FATAL_FAILURE(OpenAndVerify());
    last_health_ = e_->GetHealth();
    ASSERT_TRUE(e_->Close().ok());
    e_.reset();
    ASSERT_NO_FATAL_FAILURE(ExpectCheckClean(set_));
  }

  std::string Summary() const {
    std::string s = std::to_string(power_cuts_) + " power cuts, " + std::to_string(lost_blocks_) +
                    " unflushed blocks lost or torn;";
    for (const auto& [name, v] : last_health_.counters) {
      if (v != 0 && name.find("bytes") == std::string::npos) s += " " + name + "=" + std::to_string(v);
    }
    return s + "; remapped " + std::to_string(last_health_.remapped_sectors) + ", bad slots " +
           std::to_string(last_health_.slots_bad);
  }

  void DumpHistory() const {
    std::string s = "last operations, oldest first:\n";
    for (const std::string& h : history_) s += "  " + h + "\n";
    std::fputs(s.c_str(), stderr);
  }

  uint64_t power_cuts() const { return power_cuts_; }

 private:
  uint64_t Pick(uint64_t n) { return n <= 1 ? 0 : rng_() % n; }
  uint64_t ss() const { return cfg_.sector_size; }
  uint64_t size() const { return cfg_.sectors * cfg_.sector_size; }
  void Note(std::string what) {
    history_.push_back("cycle " + std::to_string(cycle_) + ": " + std::move(what));
    if (history_.size() > 60) history_.pop_front();
  }

  void OpenAndVerify() {
    EngineOptions options;
    // Half the cycles commit only on Flush; the others also commit in the
    // background, at any point between two operations.
    options.commit_interval = Pick(2) ? std::chrono::milliseconds(3600 * 1000)
                                      : std::chrono::milliseconds(1 + Pick(20));
    std::unique_ptr<Engine> e;
    Status s = set_.Open(&e, options);
    Note("open (commit every " + std::to_string(options.commit_interval.count()) + " ms): " + s.ToString());
    ASSERT_TRUE(s.ok()) << s.ToString();
    e_ = std::move(e);
    ASSERT_EQ(e_->GetHealth().was_clean, last_stop_clean_);
    const std::string got = ReadAll(e_.get());
    ASSERT_FALSE(::testing::Test::HasFailure());
    for (size_t i = 0; i < got.size(); i += kBlock) {
      lost_blocks_ += got.compare(i, kBlock, ref_.current(), i, kBlock) != 0;
    }
    ASSERT_NO_FATAL_FAILURE(ref_.CheckAfterCrash(got, cfg_.sector_size, e_->List(0, cfg_.sectors)));
  }

  std::pair<uint64_t, size_t> RandomRange() {
    uint64_t off = 0, n = 1;
    switch (Pick(5)) {
      case 0:
      case 1: {  // whole sectors
        const uint64_t count = 1 + Pick(4);
        off = Pick(cfg_.sectors - count + 1) * ss();
        n = count * ss();
        break;
      }
      case 2: {  // inside one sector
        const uint64_t a = Pick(ss());
        off = Pick(cfg_.sectors) * ss() + a;
        n = 1 + Pick(ss() - a);
        break;
      }
      default: {  // anywhere, up to 8 sectors
        off = Pick(size());
        n = 1 + Pick(8 * ss());
        break;
      }
    }
    n = std::min<uint64_t>(n, size() - off);
    return {off, static_cast<size_t>(n)};
  }

  void AddRule() {
    if (e_->ListFaultRules().size() >= 6) return RemoveRule();
    FaultRule r, added;
    r.op = FaultOp::kWrite;
    if (Pick(5) == 0) {
      r.device = Device::kSpare;
      r.sectors.first = Pick(cfg_.slots);
      r.sectors.count = 1 + Pick(std::min<uint64_t>(2, cfg_.slots - r.sectors.first));
    } else {
      r.device = Device::kMain;
      r.sectors.first = Pick(cfg_.sectors);
      r.sectors.count = 1 + Pick(std::min<uint64_t>(8, cfg_.sectors - r.sectors.first));
    }
    const uint64_t mode = Pick(3);
    if (mode == 1) r.times = 1 + Pick(3);
    if (mode == 2) {
      r.probability = 0.5;
      r.seed = rng_();
    }
    Status s = e_->AddFaultRule(r, &added);
    Note("add rule " + r.ToString() + ": " + s.ToString());
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void RemoveRule() {
    std::vector<FaultRule> rules = e_->ListFaultRules();
    if (rules.empty()) return;
    const uint64_t id = rules[Pick(rules.size())].id;
    Status s = e_->RemoveFaultRule(id);
    Note("remove rule " + std::to_string(id) + ": " + s.ToString());
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  bool MainWriteRuleCovers(uint64_t sector) const {
    for (const FaultRule& r : e_->ListFaultRules()) {
      if (r.device == Device::kMain && r.op != FaultOp::kRead && sector >= r.sectors.first &&
          sector < r.sectors.end()) {
        return true;
      }
    }
    return false;
  }

  void Cycle() {
    ASSERT_NO_FATAL_FAILURE(OpenAndVerify());
    const uint64_t ops = 1 + Pick(100);
    for (uint64_t i = 0; i < ops; ++i) {
      const uint64_t p = Pick(100);
      if (p < 69) {
        auto [off, n] = RandomRange();
        const std::string data = test::Pattern(n, rng_());
        Status s = e_->Write(off, n, data.data());
        Note("write " + std::to_string(off) + "+" + std::to_string(n) + ": " + s.ToString());
        ASSERT_TRUE(s.ok()) << s.ToString();
        ref_.Wrote(off, data);
      } else if (p < 77) {
        Status s = e_->Flush();
        Note("flush: " + s.ToString());
        ASSERT_TRUE(s.ok()) << s.ToString();
        ref_.Durable();
      } else if (p < 85) {
        std::vector<Mapping> table = e_->List(0, cfg_.sectors);
        if (table.empty()) continue;
        const uint64_t sector = table[Pick(table.size())].sector;
        Status s = e_->Unremap(sector);
        Note("unremap " + std::to_string(sector) + ": " + s.ToString());
        ASSERT_TRUE(s.ok() || (s.ToErrno() == EIO && MainWriteRuleCovers(sector))) << s.ToString();
      } else if (p < 90) {
        const uint64_t sector = Pick(cfg_.sectors);
        const bool mapped = !e_->List(sector, sector + 1).empty();
        Status s = e_->Remap(sector);
        Note("remap " + std::to_string(sector) + ": " + s.ToString());
        ASSERT_TRUE(mapped ? s.code() == Status::Code::kInvalidArgument : s.ok()) << s.ToString();
      } else if (p < 96) {
        ASSERT_NO_FATAL_FAILURE(AddRule());
      } else {
        ASSERT_NO_FATAL_FAILURE(RemoveRule());
      }
    }
    // Nothing in this test may read as pending or fail to read before the
    // crash either.
    ASSERT_TRUE(ReadAll(e_.get()) == ref_.current()) << "the image differs from what was written, before any crash";
    if (Pick(10) == 0) {
      // An orderly stop makes everything durable.
      Status s = e_->Close();
      Note("close: " + s.ToString());
      ASSERT_TRUE(s.ok()) << s.ToString();
      ref_.Durable();
      last_stop_clean_ = true;
    } else {
      e_->AbandonForTest();
      Note("abandoned");
      last_stop_clean_ = false;
    }
    e_.reset();
    const bool tear = Pick(2) != 0;
    set_.env.PowerCut(rng_(), tear);
    ++power_cuts_;
    Note(std::string("power cut, ") + (tear ? "tearing" : "dropping") + " unsynced writes");
    ASSERT_NO_FATAL_FAILURE(ExpectCheckClean(set_));
  }

  const CrashConfig cfg_;
  std::mt19937_64 rng_;
  test::MemSet set_;
  Reference ref_;
  std::unique_ptr<Engine> e_;
  bool last_stop_clean_ = true;
  uint64_t cycle_ = 0, power_cuts_ = 0, lost_blocks_ = 0;
  Health last_health_;
  std::deque<std::string> history_;
};

void RunSeeds(const CrashConfig& cfg, const char* test_name) {
  test::QuietLogs quiet;
  const uint64_t cycles = test::EnvU64("REMAPFS_CRASH_CYCLES", 40);
  for (uint64_t seed : test::Seeds("REMAPFS_CRASH", {3, 11, 2024, 77777})) {
    SCOPED_TRACE("seed " + std::to_string(seed) + "; reproduce with REMAPFS_CRASH_SEED=" + std::to_string(seed) +
                 " REMAPFS_CRASH_CYCLES=" + std::to_string(cycles) + " --gtest_filter=EngineCrash." + test_name);
    CrashRun run(cfg, seed);
    run.Run(cycles);
    if (::testing::Test::HasFailure()) {
      run.DumpHistory();
      return;
    }
    if (test::EnvU64("REMAPFS_CRASH_VERBOSE", 0) != 0) {
      std::printf("[%s seed %llu] %s\n", test_name, static_cast<unsigned long long>(seed), run.Summary().c_str());
    }
  }
}

TEST(EngineCrash, RandomPowerCuts512) {
  RunSeeds({.sector_size = 512, .sectors = 128, .slots = 400}, "RandomPowerCuts512");
}

TEST(EngineCrash, RandomPowerCuts4096) {
  RunSeeds({.sector_size = 4096, .sectors = 64, .slots = 200}, "RandomPowerCuts4096");
}

// --- focused cases, with commits only on Flush ---

EngineOptions FlushOnly() {
  EngineOptions o;
  o.commit_interval = std::chrono::hours(1);
  return o;
}

Status AddWriteFault(Engine* e, Device device, uint64_t first, uint64_t count = 1) {
  FaultRule r, added;
  r.device = device;
  r.sectors = {first, count};
  r.op = FaultOp::kWrite;
  return e->AddFaultRule(r, &added);
}

std::string ReadSector(Engine* e, uint64_t sector) {
  std::string out(e->sector_size(), '\0');
  Status s = e->Read(sector * e->sector_size(), out.size(), out.data());
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

// A small set (two slots) whose engine can be crashed and reopened.
struct Focused {
  explicit Focused(bool tear_in) : tear(tear_in) {}

  void Crash(std::unique_ptr<Engine>& e) {
    e->AbandonForTest();
    e.reset();
    set.env.PowerCut(/*seed=*/tear ? 5 : 6, tear);
    ASSERT_NO_FATAL_FAILURE(ExpectCheckClean(set));
    Status s = set.Open(&e, FlushOnly());
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_FALSE(e->GetHealth().was_clean);
  }

  const bool tear;
  test::QuietLogs quiet;
  test::MemSet set{/*main_size=*/64 * 4096, /*slots=*/2, /*sector_size=*/4096};
};

// Runs body once with unsynced writes dropped, once with them torn.
template <typename Body>
void DropAndTear(Body body) {
  for (bool tear : {false, true}) {
    SCOPED_TRACE(tear ? "power cut tears unsynced writes" : "power cut drops unsynced writes");
    Focused f(tear);
    body(f);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// A write that failed on MAIN landed in a slot; without a flush neither the
// mapping nor (perhaps) the slot's data survives, and the sector reads as it
// was flushed. MAIN was never changed by the failed write.
TEST(EngineCrash, UnflushedRemapIsForgotten) {
  DropAndTear([](Focused& f) {
    const std::string v1 = test::Pattern(4096, 1), v2 = test::Pattern(4096, 2);
    auto e = f.set.OpenOrDie(FlushOnly());
    ASSERT_TRUE(e->Write(5 * 4096, 4096, v1.data()).ok());
    ASSERT_TRUE(AddWriteFault(e.get(), Device::kMain, 5).ok());
    ASSERT_TRUE(e->Flush().ok());
    ASSERT_TRUE(e->Write(5 * 4096, 4096, v2.data()).ok());
    ASSERT_EQ(e->List(0, 64), (std::vector<Mapping>{{5, 0}}));
    ASSERT_TRUE(ReadSector(e.get(), 5) == v2);
    ASSERT_NO_FATAL_FAILURE(f.Crash(e));
    EXPECT_TRUE(e->List(0, 64).empty()) << "a mapping was committed without a flush";
    EXPECT_TRUE(ReadSector(e.get(), 5) == v1) << "sector 5 lost its flushed content";
    EXPECT_EQ(e->ListFaultRules().size(), 1u) << "the flushed fault rule is lost";
  });
}

// Flushed, the remap survives, and a later unflushed write to the slot
// reads as either version, block by block.
TEST(EngineCrash, FlushedRemapSurvives) {
  DropAndTear([](Focused& f) {
    const std::string v1 = test::Pattern(4096, 1), v2 = test::Pattern(4096, 2), v3 = test::Pattern(4096, 3);
    auto e = f.set.OpenOrDie(FlushOnly());
    ASSERT_TRUE(e->Write(5 * 4096, 4096, v1.data()).ok());
    ASSERT_TRUE(AddWriteFault(e.get(), Device::kMain, 5).ok());
    ASSERT_TRUE(e->Write(5 * 4096, 4096, v2.data()).ok());
    ASSERT_TRUE(e->Flush().ok());
    ASSERT_TRUE(e->Write(5 * 4096, 4096, v3.data()).ok());
    ASSERT_NO_FATAL_FAILURE(f.Crash(e));
    EXPECT_EQ(e->List(0, 64), (std::vector<Mapping>{{5, 0}}));
    const std::string got = ReadSector(e.get(), 5);
    for (uint64_t b = 0; b < 4096 / kBlock; ++b) {
      const std::string_view block(got.data() + b * kBlock, kBlock);
      EXPECT_TRUE(block == std::string_view(v2).substr(b * kBlock, kBlock) ||
                  (f.tear && block == std::string_view(v3).substr(b * kBlock, kBlock)))
          << "block " << b;
    }
  });
}

// An unremap copies the slot back to MAIN and frees the slot, but the slot
// is not reused before the commit that frees it is durable: after a crash
// before that commit the old mapping is back and must still find its data.
TEST(EngineCrash, FreedSlotIsNotReusedBeforeTheUnremapIsDurable) {
  DropAndTear([](Focused& f) {
    const std::string v5 = test::Pattern(4096, 5), v9 = test::Pattern(4096, 9), v10 = test::Pattern(4096, 10);
    auto e = f.set.OpenOrDie(FlushOnly());
    ASSERT_TRUE(AddWriteFault(e.get(), Device::kMain, 5).ok());
    ASSERT_TRUE(e->Write(5 * 4096, 4096, v5.data()).ok());
    ASSERT_TRUE(e->Flush().ok());
    ASSERT_TRUE(e->RemoveFaultRule(e->ListFaultRules().at(0).id).ok());
    ASSERT_TRUE(e->Unremap(5).ok());
    EXPECT_EQ(e->GetHealth().slots_quarantined, 1u);
    // Slot 0 waits for a commit; slot 1 is the only free one.
    ASSERT_TRUE(AddWriteFault(e.get(), Device::kMain, 9, 2).ok());
    ASSERT_TRUE(e->Write(9 * 4096, 4096, v9.data()).ok());
    EXPECT_EQ(e->List(0, 64), (std::vector<Mapping>{{9, 1}}));
    Status s = e->Write(10 * 4096, 4096, v10.data());
    EXPECT_EQ(s.ToErrno(), EIO) << "slot 0 was reused before its unremap was durable: " << s.ToString();
    ASSERT_NO_FATAL_FAILURE(f.Crash(e));
    EXPECT_EQ(e->List(0, 64), (std::vector<Mapping>{{5, 0}}));
    EXPECT_TRUE(ReadSector(e.get(), 5) == v5) << "slot 0 no longer holds sector 5";
    EXPECT_TRUE(ReadSector(e.get(), 9) == std::string(4096, '\0')) << "sector 9 kept an unflushed write";
    EXPECT_TRUE(ReadSector(e.get(), 10) == std::string(4096, '\0')) << "sector 10 kept a failed write";
  });
}

// Once flushed, the unremap is durable, the slot is free again, and the
// sector reads from MAIN after a crash.
TEST(EngineCrash, FlushedUnremapSurvives) {
  DropAndTear([](Focused& f) {
    const std::string v5 = test::Pattern(4096, 5);
    auto e = f.set.OpenOrDie(FlushOnly());
    ASSERT_TRUE(AddWriteFault(e.get(), Device::kMain, 5).ok());
    ASSERT_TRUE(e->Write(5 * 4096, 4096, v5.data()).ok());
    ASSERT_TRUE(e->Flush().ok());
    ASSERT_TRUE(e->RemoveFaultRule(e->ListFaultRules().at(0).id).ok());
    ASSERT_TRUE(e->Unremap(5).ok());
    ASSERT_TRUE(e->Flush().ok());
    EXPECT_EQ(e->GetHealth().slots_quarantined, 0u);
    EXPECT_EQ(e->GetHealth().slots_free, 2u);
    ASSERT_NO_FATAL_FAILURE(f.Crash(e));
    EXPECT_TRUE(e->List(0, 64).empty());
    EXPECT_TRUE(ReadSector(e.get(), 5) == v5) << "the copy back to MAIN was not durable";
  });
}

}  // namespace
}  // namespace remapfs
