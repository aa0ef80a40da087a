// A randomized model test of the Engine. A plain reference model (the image
// as a string, the state of every sector, the live fault rules) runs beside
// a real Engine over a test::MemSet; thousands of random operations (reads
// and writes at arbitrary offsets and lengths, flushes, manual remap /
// unremap / mark-pending, fault rules added and removed, close and reopen)
// go to both, and every result is checked against the contract of
// DESIGN.md as store/engine.cc implements it:
//   - a failed MAIN write is invisible: the data lands in a slot;
//   - a read that meets a pending sector, or a MAIN sector that keeps
//     failing, answers EIO (the sector is then pending) and changes no data;
//   - a whole-sector write to a pending sector remaps it; a partial one fails
//     with EIO and changes nothing in that sector;
//   - a request is served in sector order and stops at its first failing
//     sector: the sectors before it are written, it and those after are not;
//   - no free slot left: the write answers EIO (then the written bytes are
//     "unknown" to the model until they are read or written again).
// Fault outcomes that the model cannot predict (rules that fire N times or
// with a probability) are taken from the engine's table after each
// operation, and checked to be ones the rules in force allow.
//
// Reproduce or lengthen a run:
//   REMAPFS_MODEL_SEED=S      run seed S only (with REMAPFS_MODEL_SEEDS=N:
//                             seeds S, S+1, ..., S+N-1)
//   REMAPFS_MODEL_OPS=N       operations per seed (default 3000)
//   REMAPFS_MODEL_VERBOSE=1   one summary line per seed
// Odd seeds replay exactly; even seeds also commit in the background every
// 20 ms, so their slot choices depend on timing (the checks do not).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "store/check.h"
#include "tests/support/testharness.h"

namespace remapfs {
namespace {

constexpr uint32_t kNormal = 0xFFFFFFFE;  // model state: served from MAIN


uint64_t CounterValue(const Health& h, Counter c) {
  for (const auto& [name, v] : h.counters) {
    if (name == CounterName(c)) return v;
  }
  ADD_FAILURE() << "no counter " << CounterName(c);
  return 0;
}

std::string StateName(uint32_t st) {
  if (st == kNormal) return "normal";
  if (st == kPendingSlot) return "pending";
  return "slot " + std::to_string(st);
}

struct ModelConfig {
  uint32_t sector_size;
  uint64_t sectors;
  uint32_t slots;
  size_t max_rules;
  int spare_rule_percent;  // of the rules added
};

class Model {
 public:
  Model(const ModelConfig& cfg, uint64_t seed)
      : cfg_(cfg), rng_(seed), set_(cfg.sectors * cfg.sector_size, cfg.slots, cfg.sector_size) {
    // Even seeds: the writer also commits in the background, often, so that
    // its thread runs beside the requests; as commits free quarantined
    // slots, which slot a remap gets then depends on timing. Odd seeds
    // commit only on Flush and Close: they replay exactly.
    options_.commit_interval = seed % 2 == 0 ? std::chrono::milliseconds(20) : std::chrono::hours(1);
  }

  void Run(uint64_t ops) {
    ASSERT_NO_FATAL_FAILURE(OpenEngine());
    img_.assign(cfg_.sectors * cfg_.sector_size, '\0');
    known_.assign(img_.size(), 1);
    map_.assign(cfg_.sectors, kNormal);
    // Start from distinct content so that misplaced data shows.
    std::string data = test::Pattern(img_.size(), rng_());
    ASSERT_TRUE(e_->Write(0, data.size(), data.data()).ok());
    img_ = data;
    for (op_ = 0; op_ < ops; ++op_) {
      ASSERT_NO_FATAL_FAILURE(Step());
    }
    ASSERT_NO_FATAL_FAILURE(Finish());
  }

  void DumpHistory() const {
    std::string s = "last operations, oldest first:\n";
    for (const std::string& h : history_) s += "  " + h + "\n";
    std::fputs(s.c_str(), stderr);
  }

  std::string Summary() const {
    Health h = e_ ? e_->GetHealth() : last_health_;
    return "ops " + std::to_string(op_) + ", write EIO " + std::to_string(stats_.write_eio) + ", read EIO " +
           std::to_string(stats_.read_eio) + ", uncertain " + std::to_string(stats_.uncertain) + ", reopens " +
           std::to_string(stats_.reopens) + ", remaps " + std::to_string(CounterValue(h, Counter::kRemaps)) +
           ", pending marked " + std::to_string(CounterValue(h, Counter::kPendingMarked)) + ", spare exhausted " +
           std::to_string(CounterValue(h, Counter::kSpareExhausted)) + ", bad slots " +
           std::to_string(h.slots_bad) + ", remapped now " + std::to_string(h.remapped_sectors) + ", pending now " +
           std::to_string(h.pending_sectors);
  }

 private:
  struct Allow {
    bool normal = false, pending = false, remapped = false;
    bool new_slot = false;  // a remapped sector may move to another slot
  };

  uint64_t Pick(uint64_t n) { return n <= 1 ? 0 : rng_() % n; }
  uint64_t ss() const { return cfg_.sector_size; }
  uint64_t size() const { return cfg_.sectors * cfg_.sector_size; }

  void Note(std::string what) {
    history_.push_back("#" + std::to_string(op_) + " " + std::move(what));
    if (history_.size() > 40) history_.pop_front();
  }

  void OpenEngine() {
    std::unique_ptr<Engine> e;
    Status s = set_.Open(&e, options_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    e_ = std::move(e);
  }

  // --- fault rules as the model sees them ---
  static bool Hits(const FaultRule& r, Device d, FaultOp op, uint64_t s) {
    return r.device == d && (r.op == FaultOp::kBoth || r.op == op) && s >= r.sectors.first &&
           s < r.sectors.end() && r.delay_ms == 0;
  }
  static bool Always(const FaultRule& r) { return r.times == 0 && r.probability >= 1.0; }
  bool MayFail(Device d, FaultOp op, uint64_t s) const {
    return std::any_of(rules_.begin(), rules_.end(), [&](const FaultRule& r) { return Hits(r, d, op, s); });
  }
  bool MustFail(Device d, FaultOp op, uint64_t s) const {
    return std::any_of(rules_.begin(), rules_.end(),
                       [&](const FaultRule& r) { return Hits(r, d, op, s) && Always(r); });
  }

  // Reads the engine's table and checks the invariants every table must
  // keep: sectors and slots in range, no slot mapped twice, Health's counts
  // agree with the table and the slot states add up.
  void Observe(std::vector<uint32_t>* obs) {
    obs->assign(cfg_.sectors, kNormal);
    std::set<uint32_t> slots;
    uint64_t remapped = 0, pending = 0;
    for (const Mapping& m : e_->List(0, cfg_.sectors)) {
      ASSERT_LT(m.sector, cfg_.sectors);
      if (m.pending()) {
        ++pending;
      } else {
        ++remapped;
        ASSERT_LT(m.slot, cfg_.slots) << "sector " << m.sector;
        ASSERT_TRUE(slots.insert(m.slot).second) << "slot " << m.slot << " is mapped twice";
      }
      (*obs)[m.sector] = m.slot;
    }
    const Health h = e_->GetHealth();
    ASSERT_EQ(h.remapped_sectors, remapped);
    ASSERT_EQ(h.pending_sectors, pending);
    ASSERT_EQ(h.slots_used, remapped) << "every used slot holds exactly one remapped sector";
    ASSERT_EQ(h.slots_total, cfg_.slots);
    ASSERT_EQ(uint64_t{h.slots_free} + h.slots_used + h.slots_bad + h.slots_quarantined, h.slots_total);
    ASSERT_EQ(h.store_error, "");
  }

  std::vector<Allow> CurrentAllow() const {
    std::vector<Allow> a(cfg_.sectors);
    for (uint64_t s = 0; s < cfg_.sectors; ++s) {
      a[s].normal = map_[s] == kNormal;
      a[s].pending = map_[s] == kPendingSlot;
      a[s].remapped = !a[s].normal && !a[s].pending;
    }
    return a;
  }

  // Checks that every sector's new state is one the operation allows, then
  // makes the engine's table the model's.
  void Adopt(const std::vector<uint32_t>& obs, const std::vector<Allow>& allow) {
    for (uint64_t s = 0; s < cfg_.sectors; ++s) {
      const uint32_t before = map_[s], after = obs[s];
      const bool ok = after == kNormal         ? allow[s].normal
                      : after == kPendingSlot  ? allow[s].pending
                                               : allow[s].remapped;
      ASSERT_TRUE(ok) << "sector " << s << " went from " << StateName(before) << " to " << StateName(after)
                      << ", which this operation does not allow";
      if (before != kNormal && before != kPendingSlot && after != kNormal && after != kPendingSlot) {
        ASSERT_TRUE(before == after || allow[s].new_slot)
            << "sector " << s << " moved from " << StateName(before) << " to " << StateName(after)
            << " without a reason";
      }
    }
    map_ = obs;
  }

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

  // --- operations ---
  void Step() {
    // Flushes and reopens are rare: each costs SQLite fsyncs.
    const uint64_t p = Pick(1000);
    if (p < 390) return DoWrite();
    if (p < 695) {
      auto [off, n] = RandomRange();
      return DoRead(off, n);
    }
    if (p < 710) return DoFlush();
    if (p < 750) return DoRemap();
    if (p < 820) return DoUnremap();
    if (p < 850) return DoMarkPending();
    if (p < 920) return DoAddRule();
    if (p < 970) return DoRemoveRule();
    if (p < 975) return DoClearRules();
    if (p < 979) return DoReopen();
    return DoScan();
  }

  void DoWrite() {
    // Not a structured binding: clang 14 cannot capture one in a lambda.
    const auto [range_off, range_n] = RandomRange();
    const uint64_t off = range_off;
    const size_t n = range_n;
    const std::string data = test::Pattern(n, rng_());
    const uint64_t first = off / ss(), last = (off + n - 1) / ss();
    const uint64_t ex0 = CounterValue(e_->GetHealth(), Counter::kSpareExhausted);
    const Status s = e_->Write(off, n, data.data());
    Note("write " + std::to_string(off) + "+" + std::to_string(n) + " (sectors " + std::to_string(first) + "-" +
         std::to_string(last) + "): " + s.ToString());
    std::vector<uint32_t> obs;
    ASSERT_NO_FATAL_FAILURE(Observe(&obs));
    const uint64_t ex1 = CounterValue(e_->GetHealth(), Counter::kSpareExhausted);

    auto full = [&](uint64_t sec) { return off <= sec * ss() && (sec + 1) * ss() <= off + n; };
    // The first sector the write must fail at: pending and partly written.
    std::optional<uint64_t> must_fail_at;
    for (uint64_t sec = first; sec <= last; ++sec) {
      if (map_[sec] == kPendingSlot && !full(sec)) {
        must_fail_at = sec;
        break;
      }
    }
    std::vector<Allow> allow = CurrentAllow();
    // The states a sector the write got through may be in.
    auto written = [&](uint64_t sec) {
      const uint32_t st = map_[sec];
      Allow a;
      if (st == kNormal) {
        a.normal = !MustFail(Device::kMain, FaultOp::kWrite, sec);
        a.remapped = MayFail(Device::kMain, FaultOp::kWrite, sec);
      } else if (st == kPendingSlot) {
        a.remapped = true;  // only reached when fully written
      } else {
        a.remapped = true;
        a.new_slot = MayFail(Device::kSpare, FaultOp::kWrite, st);
      }
      allow[sec] = a;
    };
    uint64_t new_end = off + n;  // [off, new_end) now holds the new data
    bool uncertain = false;
    if (s.ok()) {
      ASSERT_FALSE(must_fail_at) << "a partial write to pending sector " << *must_fail_at << " succeeded";
      ASSERT_EQ(ex1, ex0);
      for (uint64_t sec = first; sec <= last; ++sec) written(sec);
    } else {
      ++stats_.write_eio;
      ASSERT_TRUE(s.IsIOError()) << s.ToString();
      ASSERT_EQ(s.ToErrno(), EIO) << s.ToString();
      std::vector<uint64_t> newly_pending;
      for (uint64_t sec = 0; sec < cfg_.sectors; ++sec) {
        if (map_[sec] == kNormal && obs[sec] == kPendingSlot) newly_pending.push_back(sec);
      }
      ASSERT_LE(newly_pending.size(), 1u) << "a write made several sectors pending";
      uint64_t fail_at = 0;
      if (newly_pending.size() == 1) {
        // A partial write whose MAIN write failed and whose MAIN read (for
        // the rest of the sector) failed too.
        fail_at = newly_pending[0];
        ASSERT_TRUE(fail_at >= first && fail_at <= last) << "sector " << fail_at << " is outside the write";
        ASSERT_FALSE(full(fail_at)) << "a whole-sector write made sector " << fail_at << " pending";
        ASSERT_TRUE(MayFail(Device::kMain, FaultOp::kWrite, fail_at) && MayFail(Device::kMain, FaultOp::kRead, fail_at))
            << "sector " << fail_at << " became pending without fault rules to explain it";
        ASSERT_TRUE(!must_fail_at || fail_at < *must_fail_at);
        ASSERT_EQ(ex1, ex0);
        allow[fail_at] = Allow{.pending = true};
      } else if (ex1 > ex0) {
        uncertain = true;  // no slot left: unknown which sector stopped it
        ++stats_.uncertain;
      } else {
        ASSERT_TRUE(must_fail_at) << "write failed without a reason: " << s.ToString();
        fail_at = *must_fail_at;
      }
      if (uncertain) {
        for (uint64_t sec = first; sec <= last; ++sec) {
          const uint32_t st = map_[sec];
          Allow& a = allow[sec];
          if (st == kNormal) {
            a.remapped = MayFail(Device::kMain, FaultOp::kWrite, sec);
          } else if (st == kPendingSlot) {
            a.remapped = full(sec);
          } else {
            a.new_slot = MayFail(Device::kSpare, FaultOp::kWrite, st);
          }
        }
      } else {
        for (uint64_t sec = first; sec < fail_at; ++sec) written(sec);
        new_end = std::max(off, fail_at * ss());
      }
    }
    ASSERT_NO_FATAL_FAILURE(Adopt(obs, allow));
    for (uint64_t i = off; i < new_end; ++i) {
      img_[i] = data[i - off];
      known_[i] = 1;
    }
    if (uncertain) std::fill(known_.begin() + off, known_.begin() + off + n, 0);
  }

  void DoRead(uint64_t off, size_t n) {
    std::string buf(n, '\0');
    const Status s = e_->Read(off, n, buf.data());
    const uint64_t first = off / ss(), last = (off + n - 1) / ss();
    Note("read " + std::to_string(off) + "+" + std::to_string(n) + " (sectors " + std::to_string(first) + "-" +
         std::to_string(last) + "): " + s.ToString());
    std::vector<uint32_t> obs;
    ASSERT_NO_FATAL_FAILURE(Observe(&obs));
    std::optional<uint64_t> pending_at, must_fail_at;
    for (uint64_t sec = first; sec <= last; ++sec) {
      if (map_[sec] == kPendingSlot || (map_[sec] == kNormal && MustFail(Device::kMain, FaultOp::kRead, sec))) {
        if (!must_fail_at) must_fail_at = sec;
        if (map_[sec] == kPendingSlot) {
          pending_at = sec;
          break;
        }
      }
    }
    std::vector<Allow> allow = CurrentAllow();
    if (s.ok()) {
      ASSERT_FALSE(must_fail_at) << "read succeeded over sector " << *must_fail_at << ", which is "
                                 << StateName(map_[*must_fail_at]) << " and must fail";
      for (size_t i = 0; i < n; ++i) {
        if (known_[off + i]) {
          ASSERT_EQ(buf[i], img_[off + i]) << "byte " << off + i << " (sector " << (off + i) / ss()
                                           << ", " << StateName(map_[(off + i) / ss()]) << ") differs from the model";
        } else {
          img_[off + i] = buf[i];
          known_[off + i] = 1;
        }
      }
    } else {
      ++stats_.read_eio;
      ASSERT_TRUE(s.IsIOError()) << s.ToString();
      ASSERT_EQ(s.ToErrno(), EIO) << s.ToString();
      std::vector<uint64_t> newly_pending;
      for (uint64_t sec = 0; sec < cfg_.sectors; ++sec) {
        if (map_[sec] == kNormal && obs[sec] == kPendingSlot) {
          newly_pending.push_back(sec);
          ASSERT_TRUE(sec >= first && sec <= last) << "sector " << sec << " is outside the read";
          ASSERT_TRUE(MayFail(Device::kMain, FaultOp::kRead, sec))
              << "sector " << sec << " became pending without a read fault rule";
          ASSERT_TRUE(!pending_at || sec < *pending_at) << "the read went on past pending sector " << *pending_at;
          allow[sec].pending = true;
          allow[sec].normal = false;
        }
      }
      ASSERT_TRUE(pending_at || !newly_pending.empty()) << "read failed without a reason: " << s.ToString();
      if (must_fail_at && !pending_at) {
        ASSERT_TRUE(!newly_pending.empty() && newly_pending.front() <= *must_fail_at);
      }
    }
    ASSERT_NO_FATAL_FAILURE(Adopt(obs, allow));
  }

  void DoFlush() {
    const Status s = e_->Flush();
    Note("flush: " + s.ToString());
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void DoRemap() {
    const uint64_t sec = Pick(cfg_.sectors);
    const uint64_t ex0 = CounterValue(e_->GetHealth(), Counter::kSpareExhausted);
    const Status s = e_->Remap(sec);
    Note("remap " + std::to_string(sec) + " (" + StateName(map_[sec]) + "): " + s.ToString());
    std::vector<uint32_t> obs;
    ASSERT_NO_FATAL_FAILURE(Observe(&obs));
    const uint64_t ex1 = CounterValue(e_->GetHealth(), Counter::kSpareExhausted);
    std::vector<Allow> allow = CurrentAllow();
    if (map_[sec] != kNormal) {
      ASSERT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
    } else if (s.ok()) {
      ASSERT_FALSE(MustFail(Device::kMain, FaultOp::kRead, sec));
      allow[sec] = Allow{.remapped = true};
    } else {
      ASSERT_EQ(s.ToErrno(), EIO) << s.ToString();
      if (obs[sec] == kPendingSlot) {
        ASSERT_TRUE(MayFail(Device::kMain, FaultOp::kRead, sec));
        allow[sec] = Allow{.pending = true};
      } else {
        ASSERT_GT(ex1, ex0) << "remap failed without a reason: " << s.ToString();
      }
    }
    ASSERT_NO_FATAL_FAILURE(Adopt(obs, allow));
  }

  void DoUnremap() {
    uint64_t sec = Pick(cfg_.sectors);
    if (Pick(5) != 0) {
      std::vector<uint64_t> mapped;
      for (uint64_t i = 0; i < cfg_.sectors; ++i) {
        if (map_[i] != kNormal) mapped.push_back(i);
      }
      if (!mapped.empty()) sec = mapped[Pick(mapped.size())];
    }
    const Status s = e_->Unremap(sec);
    Note("unremap " + std::to_string(sec) + " (" + StateName(map_[sec]) + "): " + s.ToString());
    std::vector<uint32_t> obs;
    ASSERT_NO_FATAL_FAILURE(Observe(&obs));
    std::vector<Allow> allow = CurrentAllow();
    if (map_[sec] == kNormal) {
      ASSERT_TRUE(s.IsNotFound()) << s.ToString();
    } else if (map_[sec] == kPendingSlot) {
      ASSERT_TRUE(s.ok()) << s.ToString();
      allow[sec] = Allow{.normal = true};
    } else if (s.ok()) {
      ASSERT_FALSE(MustFail(Device::kMain, FaultOp::kWrite, sec) || MustFail(Device::kMain, FaultOp::kRead, sec))
          << "unremap of sector " << sec << " succeeded although MAIN always fails there";
      allow[sec] = Allow{.normal = true};
    } else {
      ASSERT_EQ(s.ToErrno(), EIO) << s.ToString();
      ASSERT_TRUE(MayFail(Device::kMain, FaultOp::kWrite, sec) || MayFail(Device::kMain, FaultOp::kRead, sec))
          << "unremap failed without a reason: " << s.ToString();
    }
    ASSERT_NO_FATAL_FAILURE(Adopt(obs, allow));
  }

  void DoMarkPending() {
    const uint64_t sec = Pick(cfg_.sectors);
    const Status s = e_->MarkPending(sec);
    Note("mark-pending " + std::to_string(sec) + " (" + StateName(map_[sec]) + "): " + s.ToString());
    std::vector<uint32_t> obs;
    ASSERT_NO_FATAL_FAILURE(Observe(&obs));
    std::vector<Allow> allow = CurrentAllow();
    if (map_[sec] != kNormal && map_[sec] != kPendingSlot) {
      ASSERT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
    } else {
      ASSERT_TRUE(s.ok()) << s.ToString();
      allow[sec] = Allow{.pending = true};
    }
    ASSERT_NO_FATAL_FAILURE(Adopt(obs, allow));
  }

  void CheckRules() {
    std::vector<FaultRule> live = e_->ListFaultRules();
    ASSERT_EQ(live.size(), rules_.size());
    for (size_t i = 0; i < live.size(); ++i) {
      const FaultRule &a = live[i], &b = rules_[i];
      ASSERT_EQ(a.id, b.id);
      ASSERT_EQ(a.ToString(), b.ToString());
      ASSERT_EQ(a.seed, b.seed);
    }
  }

  void DoAddRule() {
    if (rules_.size() >= cfg_.max_rules) return DoRemoveRule();
    FaultRule added;
    const FaultRule r = RandomRule();
    const Status s = e_->AddFaultRule(r, &added);
    Note("add rule " + r.ToString() + ": " + s.ToString() + " id " + std::to_string(added.id));
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_NE(added.id, 0u);
    rules_.push_back(added);
    ASSERT_NO_FATAL_FAILURE(CheckRules());
  }

  void DoRemoveRule() {
    if (rules_.empty() || Pick(8) == 0) {
      const Status s = e_->RemoveFaultRule(1000000 + Pick(1000));
      Note("remove missing rule: " + s.ToString());
      ASSERT_TRUE(s.IsNotFound()) << s.ToString();
      return;
    }
    const size_t i = Pick(rules_.size());
    const Status s = e_->RemoveFaultRule(rules_[i].id);
    Note("remove rule " + std::to_string(rules_[i].id) + ": " + s.ToString());
    ASSERT_TRUE(s.ok()) << s.ToString();
    rules_.erase(rules_.begin() + static_cast<ptrdiff_t>(i));
    ASSERT_NO_FATAL_FAILURE(CheckRules());
  }

  void DoClearRules() {
    e_->ClearFaultRules();
    Note("clear rules");
    rules_.clear();
    ASSERT_NO_FATAL_FAILURE(CheckRules());
  }

  void DoReopen() {
    const std::vector<Mapping> before = e_->List(0, cfg_.sectors);
    const Status s = e_->Close();
    Note("close: " + s.ToString());
    ASSERT_TRUE(s.ok()) << s.ToString();
    last_health_ = e_->GetHealth();
    e_.reset();
    if (Pick(2) == 0) {
      std::vector<std::string> problems;
      ASSERT_TRUE(CheckSet(&set_.env, set_.paths, &problems).ok());
      ASSERT_TRUE(problems.empty()) << problems.front();
    }
    ASSERT_NO_FATAL_FAILURE(OpenEngine());
    Note("reopened");
    ++stats_.reopens;
    ASSERT_TRUE(e_->GetHealth().was_clean);
    ASSERT_EQ(e_->List(0, cfg_.sectors), before) << "the table changed across close and reopen";
    ASSERT_NO_FATAL_FAILURE(CheckRules());
    std::vector<uint32_t> obs;
    ASSERT_NO_FATAL_FAILURE(Observe(&obs));
    ASSERT_NO_FATAL_FAILURE(Adopt(obs, CurrentAllow()));
  }

  // Reads the image sector by sector, in random order.
  void DoScan() {
    Note("scan");
    std::vector<uint64_t> order(cfg_.sectors);
    for (uint64_t i = 0; i < cfg_.sectors; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng_);
    for (uint64_t sec : order) ASSERT_NO_FATAL_FAILURE(DoRead(sec * ss(), ss()));
  }

  // Without fault rules every sector reads as the model says (pending ones
  // fail), the set closes cleanly and `remapctl check` finds no problem.
  void Finish() {
    ASSERT_NO_FATAL_FAILURE(DoClearRules());
    ASSERT_NO_FATAL_FAILURE(DoScan());
    ASSERT_NO_FATAL_FAILURE(DoReopen());
    ASSERT_NO_FATAL_FAILURE(DoScan());
    last_health_ = e_->GetHealth();
    const Status s = e_->Close();
    ASSERT_TRUE(s.ok()) << s.ToString();
    e_.reset();
    std::vector<std::string> problems;
    ASSERT_TRUE(CheckSet(&set_.env, set_.paths, &problems).ok());
    ASSERT_TRUE(problems.empty()) << problems.front();
  }

  const ModelConfig cfg_;
  std::mt19937_64 rng_;
  test::MemSet set_;
  EngineOptions options_;
  std::unique_ptr<Engine> e_;

  std::string img_;              // what each byte reads as (pending: MAIN's bytes)
  std::string known_;            // 0: the byte is old or new after a failed write
  std::vector<uint32_t> map_;    // kNormal, kPendingSlot or the slot
  std::vector<FaultRule> rules_;  // live rules, in the engine's order

  uint64_t op_ = 0;
  std::deque<std::string> history_;
  Health last_health_;
  struct {
    uint64_t write_eio = 0, read_eio = 0, uncertain = 0, reopens = 0;
  } stats_;
};

void RunSeeds(const ModelConfig& cfg, const char* test_name) {
  test::QuietLogs quiet;
  const uint64_t ops = test::EnvU64("REMAPFS_MODEL_OPS", 3000);
  const bool verbose = test::EnvU64("REMAPFS_MODEL_VERBOSE", 0) != 0;
  for (uint64_t seed : test::Seeds("REMAPFS_MODEL", {1, 7, 42, 1234, 987654321})) {
    SCOPED_TRACE("seed " + std::to_string(seed) + "; reproduce with REMAPFS_MODEL_SEED=" + std::to_string(seed) +
                 " REMAPFS_MODEL_OPS=" + std::to_string(ops) + " --gtest_filter=EngineModel." + test_name);
    Model m(cfg, seed);
    m.Run(ops);
    if (::testing::Test::HasFailure()) {
      m.DumpHistory();
      return;
    }
    if (verbose) std::printf("[%s seed %llu] %s\n", test_name, static_cast<unsigned long long>(seed), m.Summary().c_str());
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
  std::vector<std::string> problems;
  ASSERT_TRUE(CheckSet(&set.env, set.paths, &problems).ok());
  EXPECT_TRUE(problems.empty()) << problems.front();
  std::unique_ptr<Engine> e;
  Status s = set.Open(&e);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::string back(512, '\0');
  ASSERT_TRUE(e->Read(3 * 512, 512, back.data()).ok());
  EXPECT_EQ(back, v1);
}

}  // namespace
}  // namespace remapfs
