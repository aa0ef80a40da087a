// The randomized model test of the Engine: thousands of random operations
// (reads and writes at arbitrary offsets and lengths, flushes, manual remap /
// unremap / mark-pending, fault rules added and removed, close and reopen)
// go to a real Engine over a test::MemSet, and test::EngineModel
// (tests/support/engine_model.h, the model the fuzzer drives too) checks
// every answer against the contract. The fault rules fire always, the first
// N times or with a probability; SPARE rules fail slot writes.
//
// Reproduce or lengthen a run:
//   REMAPFS_MODEL_SEED=S      run seed S only (with REMAPFS_MODEL_SEEDS=N:
//                             seeds S, S+1, ..., S+N-1)
//   REMAPFS_MODEL_OPS=N       operations per seed (default 3000)
//   REMAPFS_MODEL_VERBOSE=1   one summary line per seed
// Odd seeds replay exactly; even seeds also commit in the background every
// 20 ms, so their slot choices depend on timing (the checks do not).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/support/engine_model.h"
#include "tests/support/testharness.h"

namespace remapfs {
namespace {

using test::CounterValue;

struct ModelConfig {
  uint32_t sector_size;
  uint64_t sectors;
  uint32_t slots;
  size_t max_rules;
  int spare_rule_percent;  // of the rules added
};

class Driver {
 public:
  Driver(const ModelConfig& cfg, uint64_t seed)
      : cfg_(cfg),
        rng_(seed),
        set_(cfg.sectors * cfg.sector_size, cfg.slots, cfg.sector_size),
        model_({cfg.sector_size, cfg.sectors, cfg.slots}, std::string(cfg.sectors * cfg.sector_size, '\0')) {
    // Even seeds: the writer also commits in the background, often, so that
    // its thread runs beside the requests; as commits free quarantined
    // slots, which slot a remap gets then depends on timing. Odd seeds
    // commit only on Flush and Close: they replay exactly.
    options_.commit_interval = seed % 2 == 0 ? std::chrono::milliseconds(20) : std::chrono::hours(1);
  }

  void Run(uint64_t ops) {
    const Status open = Open(&e_);
    ASSERT_TRUE(open.ok()) << open.ToString();
    // Start from distinct content so that misplaced data shows.
    const Status first = model_.Write(e_.get(), 0, test::Pattern(size(), rng_()));
    ASSERT_TRUE(first.ok()) << first.ToString();
    for (uint64_t op = 0; op < ops; ++op) {
      const Status s = Step();
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    const Status s = Finish();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void DumpHistory() const {
    std::fputs(("last operations, oldest first:\n" + model_.History()).c_str(), stderr);
  }

  std::string Summary() const {
    const test::EngineModel::Stats& st = model_.stats();
    return "write EIO " + std::to_string(st.write_eio) + ", read EIO " + std::to_string(st.read_eio) +
           ", uncertain " + std::to_string(st.uncertain) + ", reopens " + std::to_string(st.reopens) + ", remaps " +
           std::to_string(CounterValue(last_health_, Counter::kRemaps)) + ", pending marked " +
           std::to_string(CounterValue(last_health_, Counter::kPendingMarked)) + ", spare exhausted " +
           std::to_string(CounterValue(last_health_, Counter::kSpareExhausted)) + ", bad slots " +
           std::to_string(last_health_.slots_bad) + ", remapped now " + std::to_string(last_health_.remapped_sectors) +
           ", pending now " + std::to_string(last_health_.pending_sectors);
  }

 private:
  uint64_t Pick(uint64_t n) { return n <= 1 ? 0 : rng_() % n; }
  uint64_t ss() const { return cfg_.sector_size; }
  uint64_t size() const { return cfg_.sectors * cfg_.sector_size; }

  Status Open(std::unique_ptr<Engine>* e) { return set_.Open(e, options_); }

  // --- random inputs ---
  std::pair<uint64_t, size_t> RandomRange() {
    uint64_t off = 0, n = 1;
    switch (Pick(7)) {
      case 0:
      case 1: {  // whole sectors
        const uint64_t count = 1 + Pick(std::min<uint64_t>(4, cfg_.sectors));
        off = Pick(cfg_.sectors - count + 1) * ss();
        n = count * ss();
        break;
      }
      case 2: {  // inside one sector, any alignment
        const uint64_t a = Pick(ss());
        off = Pick(cfg_.sectors) * ss() + a;
        n = 1 + Pick(ss() - a);
        break;
      }
      case 3: {  // across one sector boundary
        const uint64_t boundary = (1 + Pick(cfg_.sectors - 1)) * ss();
        const uint64_t left = 1 + Pick(ss()), right = 1 + Pick(ss());
        off = boundary - left;
        n = left + right;
        break;
      }
      case 4: {  // 512-byte aligned pieces (sub-sector for 4096)
        off = Pick(size() / 512) * 512;
        n = 512 * (1 + Pick(16));
        break;
      }
      case 5: {  // many sectors, any alignment
        off = Pick(size());
        n = 1 + Pick(16 * ss());
        break;
      }
      default: {  // a few bytes
        off = Pick(size());
        n = 1 + Pick(8);
        break;
      }
    }
    n = std::min<uint64_t>(n, size() - off);
    return {off, static_cast<size_t>(n)};
  }

  FaultRule RandomRule() {
    FaultRule r;
    if (static_cast<int>(Pick(100)) < cfg_.spare_rule_percent) {
      r.device = Device::kSpare;
      r.op = FaultOp::kWrite;
      r.sectors.first = Pick(cfg_.slots);
      r.sectors.count = 1 + Pick(std::min<uint64_t>(2, cfg_.slots - r.sectors.first));
    } else {
      r.device = Device::kMain;
      r.op = static_cast<FaultOp>(Pick(3));
      r.sectors.first = Pick(cfg_.sectors);
      r.sectors.count = 1 + Pick(std::min<uint64_t>(3, cfg_.sectors - r.sectors.first));
    }
    const uint64_t mode = Pick(10);
    if (mode >= 4 && mode < 7) {
      r.times = 1 + Pick(3);
    } else if (mode >= 7) {
      r.probability = 0.2 + 0.6 * static_cast<double>(Pick(1000)) / 1000.0;
      r.seed = rng_();
      if (Pick(2)) r.times = 1 + Pick(5);
    }
    return r;
  }

  // Mostly a sector that is mapped, sometimes any.
  uint64_t UnremapTarget() {
    std::vector<uint64_t> mapped;
    for (uint64_t i = 0; i < cfg_.sectors; ++i) {
      if (model_.state(i) != test::kNormalSector) mapped.push_back(i);
    }
    if (Pick(5) == 0 || mapped.empty()) return Pick(cfg_.sectors);
    return mapped[Pick(mapped.size())];
  }

  Status RemoveRule() {
    const std::vector<FaultRule>& rules = model_.rules();
    if (rules.empty() || Pick(8) == 0) return model_.RemoveRule(e_.get(), 1000000 + Pick(1000));
    return model_.RemoveRule(e_.get(), rules[Pick(rules.size())].id);
  }

  // A close and an open; half the time `remapctl check` runs in between.
  Status Reopen() {
    return model_.Reopen(&e_, [this](std::unique_ptr<Engine>* e) {
      if (Pick(2) == 0) {
        if (Status s = test::CheckSetClean(&set_.env, set_.paths); !s.ok()) return s;
      }
      return Open(e);
    });
  }

  Status Step() {
    // Flushes and reopens are rare: each costs SQLite fsyncs.
    Engine* e = e_.get();
    const uint64_t p = Pick(1000);
    if (p < 390) {
      const auto [off, n] = RandomRange();
      return model_.Write(e, off, test::Pattern(n, rng_()));
    }
    if (p < 695) {
      const auto [off, n] = RandomRange();
      return model_.Read(e, off, n);
    }
    if (p < 710) return model_.Flush(e);
    if (p < 750) return model_.Remap(e, Pick(cfg_.sectors));
    if (p < 820) return model_.Unremap(e, UnremapTarget());
    if (p < 850) return model_.MarkPending(e, Pick(cfg_.sectors));
    if (p < 920) return model_.rules().size() >= cfg_.max_rules ? RemoveRule() : model_.AddRule(e, RandomRule());
    if (p < 970) return RemoveRule();
    if (p < 975) return model_.ClearRules(e);
    if (p < 979) return Reopen();
    return model_.Scan(e, &rng_);
  }

  // Without fault rules every sector reads as the model says (pending ones
  // fail), the set closes cleanly and `remapctl check` finds no problem.
  Status Finish() {
    Status s = model_.ClearRules(e_.get());
    if (s.ok()) s = model_.Scan(e_.get(), &rng_);
    if (s.ok()) s = Reopen();
    if (s.ok()) s = model_.Scan(e_.get(), &rng_);
    if (!s.ok()) return s;
    s = e_->Close();
    last_health_ = e_->GetHealth();
    e_.reset();
    if (!s.ok()) return s;
    return test::CheckSetClean(&set_.env, set_.paths);
  }

  const ModelConfig cfg_;
  std::mt19937_64 rng_;
  test::MemSet set_;
  EngineOptions options_;
  std::unique_ptr<Engine> e_;
  test::EngineModel model_;
  Health last_health_;
};

void RunSeeds(const ModelConfig& cfg, const char* test_name) {
  test::QuietLogs quiet;
  const uint64_t ops = test::EnvU64("REMAPFS_MODEL_OPS", 3000);
  const bool verbose = test::EnvU64("REMAPFS_MODEL_VERBOSE", 0) != 0;
  for (uint64_t seed : test::Seeds("REMAPFS_MODEL", {1, 7, 42, 1234, 987654321})) {
    SCOPED_TRACE("seed " + std::to_string(seed) + "; reproduce with REMAPFS_MODEL_SEED=" + std::to_string(seed) +
                 " REMAPFS_MODEL_OPS=" + std::to_string(ops) + " --gtest_filter=EngineModel." + test_name);
    Driver d(cfg, seed);
    d.Run(ops);
    if (::testing::Test::HasFailure()) {
      d.DumpHistory();
      return;
    }
    if (verbose) std::printf("[%s seed %llu] %s\n", test_name, static_cast<unsigned long long>(seed), d.Summary().c_str());
  }
}

TEST(EngineModel, Sectors512) {
  RunSeeds({.sector_size = 512, .sectors = 256, .slots = 320, .max_rules = 6, .spare_rule_percent = 15},
           "Sectors512");
}

TEST(EngineModel, Sectors4096) {
  RunSeeds({.sector_size = 4096, .sectors = 64, .slots = 96, .max_rules = 5, .spare_rule_percent = 15},
           "Sectors4096");
}

// Few slots: the spare runs out now and then, and writes fail with EIO.
TEST(EngineModel, SmallSpare) {
  RunSeeds({.sector_size = 512, .sectors = 64, .slots = 12, .max_rules = 6, .spare_rule_percent = 20},
           "SmallSpare");
}

// Found by SmallSpare: a slot write fails and no other slot is free. The
// write fails with EIO, but the sector must keep a consistent mapping: the
// table (in memory and in the DB) never maps a sector to a bad slot, else
// the next open refuses the set as inconsistent.
TEST(EngineModel, SlotWriteFailureWithSpareExhaustedKeepsSetConsistent) {
  test::QuietLogs quiet;
  test::MemSet set(/*main_size=*/64 * 512, /*slots=*/1, /*sector_size=*/512);
  const std::string v1 = test::Pattern(512, 1), v2 = test::Pattern(512, 2);
  {
    auto e = set.OpenOrDie();
    FaultRule r, added;
    r.device = Device::kMain;
    r.sectors = {3, 1};
    r.op = FaultOp::kWrite;
    ASSERT_TRUE(e->AddFaultRule(r, &added).ok());
    ASSERT_TRUE(e->Write(3 * 512, 512, v1.data()).ok());
    ASSERT_EQ(e->List(0, 64), (std::vector<Mapping>{{3, 0}}));
    r.device = Device::kSpare;
    r.sectors = {0, 1};
    ASSERT_TRUE(e->AddFaultRule(r, &added).ok());
    Status s = e->Write(3 * 512, 512, v2.data());
    EXPECT_EQ(s.ToErrno(), EIO) << s.ToString();
    EXPECT_EQ(e->List(0, 64), (std::vector<Mapping>{{3, 0}}));
    Health h = e->GetHealth();
    EXPECT_EQ(h.slots_used, 1u);
    EXPECT_EQ(h.remapped_sectors, 1u);
    std::string back(512, '\0');
    ASSERT_TRUE(e->Read(3 * 512, 512, back.data()).ok());
    EXPECT_EQ(back, v1) << "a failed write changed the sector";
    ASSERT_TRUE(e->Close().ok());
  }
  const Status check = test::CheckSetClean(&set.env, set.paths);
  EXPECT_TRUE(check.ok()) << check.ToString();
  std::unique_ptr<Engine> e;
  Status s = set.Open(&e);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::string back(512, '\0');
  ASSERT_TRUE(e->Read(3 * 512, 512, back.data()).ok());
  EXPECT_EQ(back, v1);
}

}  // namespace
}  // namespace remapfs
