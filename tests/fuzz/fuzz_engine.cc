// fuzz_engine: operation sequences, decoded from the input, against a real
// Engine (MAIN and SPARE in a MemEnv, the DB a real SQLite file) and a plain
// reference model: the image's bytes (and which of them are known), the
// state of every sector as last observed, and the fault rules in force
// (always-failing reads or writes of MAIN or SPARE sectors).
//
// After every operation the engine's table is read back (Engine::List and
// GetHealth) and checked: sectors and slots in range, no slot mapped twice,
// the health counts match the table; every sector's change of state must be
// one the operation and the rules explain. A successful read must return
// the known bytes; an EIO, from a read or a write, must be explained by a
// pending sector or a fault rule (or, for a write, by an exhausted SPARE).
// A write that failed leaves its bytes unknown. Any mismatch aborts.
//
// Input: byte 0 picks the geometry (bit 0: 16 sectors of 4096 bytes, else 64
// of 512; few slots, so SPARE runs out). Then operations, each an opcode
// byte and its arguments (see Step); past the end of the input every byte
// reads as zero. tests/fuzz/make_corpus.py writes seeds in this format.
// REMAPFS_FUZZ_TRACE=1 prints every operation and its result.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "store/health.h"

namespace remapfs::fuzz {
namespace {

constexpr uint32_t kNormal = 0xFFFFFFFE;  // model state: served from MAIN
constexpr size_t kMaxOps = 256;

const Template& Geometry(bool big) {
  static const Template small = MakeTemplate(512, 64, 8);
  static const Template large = MakeTemplate(4096, 16, 6);
  return big ? large : small;
}

uint64_t CounterOf(const Health& h, Counter c) {
  for (const auto& [name, v] : h.counters) {
    if (name == CounterName(c)) return v;
  }
  Die(__FILE__, __LINE__, "no counter " + std::string(CounterName(c)));
}

std::string StateName(uint32_t st) {
  if (st == kNormal) return "normal";
  if (st == kPendingSlot) return "pending";
  return "slot " + std::to_string(st);
}

class Harness {
 public:
  Harness(const Template& t, Reader* in) : t_(t), in_(in) {}

  void Run() {
    // MAIN starts with distinct bytes so that misplaced data shows.
    static const std::string initial_small = Pattern(Geometry(false).main_size(), 0x5eed);
    static const std::string initial_large = Pattern(Geometry(true).main_size(), 0x5eed);
    img_ = t_.sector_size == 512 ? initial_small : initial_large;
    known_.assign(img_.size(), 1);
    state_.assign(t_.sectors, kNormal);
    env_ = MakeEnv(t_, img_);
    db_ = WorkDir() + "/engine.db";
    PutDb(db_, t_.db);
    Open();
    for (size_t op = 0; op < kMaxOps && !in_->empty(); ++op) Step();
    // The end: with no rule left, every sector that is not pending reads
    // back the known bytes. (Op 9 checks the same across a reopen.)
    engine_->ClearFaultRules();
    rules_.clear();
    Scan();
    const Status s = engine_->Close();
    FUZZ_CHECK(s.ok(), s.ToString());
    engine_.reset();
    RemoveDb(db_);
  }

 private:
  uint64_t ss() const { return t_.sector_size; }
  uint64_t size() const { return t_.main_size(); }

  void Open() {
    EngineOptions o;
    o.env = env_.get();
    o.commit_interval = std::chrono::hours(1);  // commits only on Flush and Close
    o.read_attempts = 2;
    const Status s = Engine::Open(SetPaths{kMainPath, kSparePath, db_}, o, &engine_);
    FUZZ_CHECK(s.ok(), s.ToString());
  }

  // --- the rules as the model sees them ---
  bool Rule(Device d, FaultOp op, uint64_t sector) const {
    return std::any_of(rules_.begin(), rules_.end(), [&](const FaultRule& r) {
      return r.device == d && (r.op == FaultOp::kBoth || r.op == op) && sector >= r.sectors.first &&
             sector < r.sectors.end();
    });
  }
  bool MainRead(uint64_t s) const { return Rule(Device::kMain, FaultOp::kRead, s); }
  bool MainWrite(uint64_t s) const { return Rule(Device::kMain, FaultOp::kWrite, s); }
  bool SpareRead(uint32_t slot) const { return Rule(Device::kSpare, FaultOp::kRead, slot); }
  bool SpareWrite(uint32_t slot) const { return Rule(Device::kSpare, FaultOp::kWrite, slot); }
  static bool IsSlot(uint32_t st) { return st != kNormal && st != kPendingSlot; }

  // Reads the engine's table, checks what every table must keep, and
  // returns each sector's state.
  std::vector<uint32_t> Observe() {
    std::vector<uint32_t> obs(t_.sectors, kNormal);
    std::set<uint32_t> slots;
    uint64_t remapped = 0, pending = 0;
    uint64_t prev = 0;
    bool first = true;
    for (const Mapping& m : engine_->List(0, UINT64_MAX)) {
      FUZZ_CHECK(m.sector < t_.sectors, "sector " + std::to_string(m.sector) + " is past MAIN's end");
      FUZZ_CHECK(first || m.sector > prev, "List is not in sector order");
      first = false;
      prev = m.sector;
      if (m.pending()) {
        ++pending;
      } else {
        ++remapped;
        FUZZ_CHECK(m.slot < t_.slots, "slot " + std::to_string(m.slot) + " out of range");
        FUZZ_CHECK(slots.insert(m.slot).second, "slot " + std::to_string(m.slot) + " is mapped twice");
      }
      obs[m.sector] = m.slot;
    }
    const Health h = engine_->GetHealth();
    FUZZ_CHECK(h.remapped_sectors == remapped, std::to_string(h.remapped_sectors) + " vs " + std::to_string(remapped));
    FUZZ_CHECK(h.pending_sectors == pending, std::to_string(h.pending_sectors) + " vs " + std::to_string(pending));
    FUZZ_CHECK(h.slots_used == remapped, "every used slot holds exactly one remapped sector");
    FUZZ_CHECK(h.slots_total == t_.slots, "slots_total");
    FUZZ_CHECK(uint64_t{h.slots_free} + h.slots_used + h.slots_bad + h.slots_quarantined == h.slots_total,
               "slot states do not add up");
    FUZZ_CHECK(h.store_error.empty(), h.store_error);
    return obs;
  }

  // Checks each sector's new state against allowed(sector, before, after),
  // then takes the engine's table as the model's.
  template <typename Allowed>
  void Adopt(const std::vector<uint32_t>& obs, const std::string& what, Allowed&& allowed) {
    static const bool trace = std::getenv("REMAPFS_FUZZ_TRACE") != nullptr;
    if (trace) std::fprintf(stderr, "%s\n", what.c_str());
    for (uint64_t s = 0; s < t_.sectors; ++s) {
      const uint32_t before = state_[s], after = obs[s];
      if (before == after) continue;
      FUZZ_CHECK(allowed(s, before, after), what + ": sector " + std::to_string(s) + " went from " +
                                                StateName(before) + " to " + StateName(after));
    }
    state_ = obs;
  }
  void AdoptUnchanged(const std::string& what) {
    Adopt(Observe(), what, [](uint64_t, uint32_t, uint32_t) { return false; });
  }

  // --- the input ---
  std::pair<uint64_t, size_t> Range() {
    const uint8_t shape = in_->U8();
    const uint64_t a = in_->U16(), b = in_->U16();
    uint64_t off = 0, n = 1;
    switch (shape % 4) {
      case 0: {  // whole sectors
        const uint64_t first = a % t_.sectors;
        off = first * ss();
        n = (1 + b % std::min<uint64_t>(8, t_.sectors - first)) * ss();
        break;
      }
      case 1:  // inside one sector, any alignment
        off = a % size();
        n = 1 + b % (ss() - off % ss());
        break;
      case 2:  // anywhere, up to four sectors
        off = a % size();
        n = 1 + b % std::min<uint64_t>(size() - off, 4 * ss());
        break;
      default:  // 512-byte pieces (sub-sector with 4096-byte sectors)
        off = (a % (size() / 512)) * 512;
        n = std::min<uint64_t>(512 * (1 + b % 8), size() - off);
        break;
    }
    return {off, static_cast<size_t>(n)};
  }
  uint64_t Sector() { return in_->U8() % (t_.sectors + 2); }  // sometimes out of range

  void Step() {
    const uint8_t op = in_->U8();
    switch (op % 11) {
      case 0: return DoWrite();
      case 1: {
        const auto range = Range();
        return DoRead(range.first, range.second);
      }
      case 2: return DoFlush();
      case 3: return DoRemap();
      case 4: return DoUnremap();
      case 5: return DoMarkPending();
      case 6: return DoAddRule();
      case 7: return DoRemoveRule();
      case 8:
        engine_->ClearFaultRules();
        rules_.clear();
        return AdoptUnchanged("clear rules");
      case 9: return Reopen();
      default: return Scan();
    }
  }

  // --- operations ---
  void DoWrite() {
    const auto range = Range();
    const uint64_t off = range.first;
    const size_t n = range.second;
    const std::string data = Pattern(n, (++writes_ << 8) | in_->U8());
    const uint64_t first = off / ss(), last = (off + n - 1) / ss();
    auto full = [&](uint64_t s) { return off <= s * ss() && (s + 1) * ss() <= off + n; };
    const uint64_t exhausted0 = CounterOf(engine_->GetHealth(), Counter::kSpareExhausted);
    const Status st = engine_->Write(off, n, data.data());
    const std::string what = "write " + std::to_string(off) + "+" + std::to_string(n) + ": " + st.ToString();
    const std::vector<uint32_t> obs = Observe();
    const bool exhausted = CounterOf(engine_->GetHealth(), Counter::kSpareExhausted) > exhausted0;
    bool pending_partial = false, explained = exhausted;
    for (uint64_t s = first; s <= last; ++s) {
      const uint32_t before = state_[s];
      if (full(s)) continue;
      if (before == kPendingSlot) pending_partial = explained = true;
      if (before == kNormal && MainWrite(s) && MainRead(s)) explained = true;
      if (IsSlot(before) && SpareRead(before)) explained = true;
    }
    if (st.ok()) {
      FUZZ_CHECK(!pending_partial, what + ": a partial write to a pending sector succeeded");
      FUZZ_CHECK(!exhausted, what + ": succeeded although SPARE ran out");
    } else {
      FUZZ_CHECK(st.IsIOError() && st.ToErrno() == EIO, what);
      FUZZ_CHECK(explained, what + ": no pending sector, fault rule or exhausted SPARE explains it");
    }
    Adopt(obs, what, [&](uint64_t s, uint32_t before, uint32_t after) {
      if (s < first || s > last) return false;
      if (before == kNormal) {
        return (IsSlot(after) && MainWrite(s)) ||
               (after == kPendingSlot && !full(s) && MainWrite(s) && MainRead(s));
      }
      if (before == kPendingSlot) return IsSlot(after) && full(s);
      return IsSlot(after) && SpareWrite(before);
    });
    if (st.ok()) {
      img_.replace(off, n, data);
      std::fill(known_.begin() + off, known_.begin() + off + n, 1);
    } else {
      std::fill(known_.begin() + off, known_.begin() + off + n, 0);
    }
  }

  // Whether a read of sector s must fail, as things are.
  bool ReadMustFail(uint64_t s) const {
    const uint32_t st = state_[s];
    return st == kPendingSlot || (st == kNormal && MainRead(s)) || (IsSlot(st) && SpareRead(st));
  }

  // A read; with observe == false the caller observes the table afterwards
  // (Scan: many reads, one look at the table).
  void DoRead(uint64_t off, size_t n, bool observe = true) {
    std::string buf(n, '\0');
    const Status st = engine_->Read(off, n, buf.data());
    const uint64_t first = off / ss(), last = (off + n - 1) / ss();
    auto what = [&] { return "read " + std::to_string(off) + "+" + std::to_string(n) + ": " + st.ToString(); };
    bool must_fail = false;
    for (uint64_t s = first; s <= last; ++s) must_fail |= ReadMustFail(s);
    if (st.ok()) {
      FUZZ_CHECK(!must_fail, what() + ": succeeded over a pending or failing sector");
      if (std::memcmp(buf.data(), img_.data() + off, n) == 0) n = 0;  // all bytes as the model says
      for (size_t i = 0; i < n; ++i) {
        if (known_[off + i] && buf[i] != img_[off + i]) {
          Die(__FILE__, __LINE__, what() + ": byte " + std::to_string(off + i) + " (sector " +
                                      std::to_string((off + i) / ss()) + ", " + StateName(state_[(off + i) / ss()]) +
                                      ") differs from the model");
        }
      }
    } else {
      FUZZ_CHECK(st.IsIOError() && st.ToErrno() == EIO, what());
      FUZZ_CHECK(must_fail, what() + ": no pending sector or fault rule explains the EIO");
    }
    if (observe) {
      Adopt(Observe(), what(), [&](uint64_t s, uint32_t before, uint32_t after) {
        return s >= first && s <= last && before == kNormal && after == kPendingSlot && MainRead(s);
      });
    }
  }

  // Every sector on its own, so that one failure does not hide the others.
  void Scan() {
    for (uint64_t s = 0; s < t_.sectors; ++s) DoRead(s * ss(), ss(), /*observe=*/false);
    Adopt(Observe(), "scan", [&](uint64_t s, uint32_t before, uint32_t after) {
      return before == kNormal && after == kPendingSlot && MainRead(s);
    });
  }

  void DoFlush() {
    const Status st = engine_->Flush();
    FUZZ_CHECK(st.ok(), "flush: " + st.ToString());
    AdoptUnchanged("flush");
    FUZZ_CHECK(engine_->GetHealth().slots_quarantined == 0, "a flush leaves no slot quarantined");
  }

  void Reopen() {
    const std::vector<Mapping> table = engine_->List(0, UINT64_MAX);
    const std::vector<FaultRule> rules = engine_->ListFaultRules();
    Status st = engine_->Close();
    FUZZ_CHECK(st.ok(), "close: " + st.ToString());
    engine_.reset();
    Open();
    FUZZ_CHECK(engine_->List(0, UINT64_MAX) == table, "the table changed across close and open");
    const std::vector<FaultRule> again = engine_->ListFaultRules();
    FUZZ_CHECK(again.size() == rules.size(), "the fault rules changed across close and open");
    for (size_t i = 0; i < rules.size(); ++i) {
      FUZZ_CHECK(again[i].id == rules[i].id && again[i].device == rules[i].device && again[i].op == rules[i].op &&
                     again[i].sectors.first == rules[i].sectors.first &&
                     again[i].sectors.count == rules[i].sectors.count,
                 "fault rule " + std::to_string(rules[i].id) + " changed across close and open");
    }
    const Health h = engine_->GetHealth();
    FUZZ_CHECK(h.was_clean, "an orderly close left the set unclean");
    FUZZ_CHECK(h.slots_quarantined == 0, "quarantined slots after open");
    AdoptUnchanged("reopen");
  }

  void DoRemap() {
    const uint64_t s = Sector();
    const uint64_t exhausted0 = CounterOf(engine_->GetHealth(), Counter::kSpareExhausted);
    const Status st = engine_->Remap(s);
    const std::string what = "remap " + std::to_string(s) + ": " + st.ToString();
    if (s >= t_.sectors || state_[s] != kNormal) {
      FUZZ_CHECK(st.code() == Status::Code::kInvalidArgument, what);
      return AdoptUnchanged(what);
    }
    const bool exhausted = CounterOf(engine_->GetHealth(), Counter::kSpareExhausted) > exhausted0;
    if (st.ok()) {
      FUZZ_CHECK(!MainRead(s) && !exhausted, what);
    } else {
      FUZZ_CHECK(st.IsIOError() && (MainRead(s) || exhausted), what);
    }
    Adopt(Observe(), what, [&](uint64_t sec, uint32_t, uint32_t after) {
      return sec == s && (st.ok() ? IsSlot(after) : after == kPendingSlot && MainRead(s));
    });
  }

  void DoUnremap() {
    const uint64_t s = Sector();
    const Status st = engine_->Unremap(s);
    const std::string what = "unremap " + std::to_string(s) + ": " + st.ToString();
    if (s >= t_.sectors) {
      FUZZ_CHECK(st.code() == Status::Code::kInvalidArgument, what);
      return AdoptUnchanged(what);
    }
    const uint32_t before = state_[s];
    if (before == kNormal) {
      FUZZ_CHECK(st.IsNotFound(), what);
      return AdoptUnchanged(what);
    }
    if (before == kPendingSlot) {
      FUZZ_CHECK(st.ok(), what);
    } else {
      const bool fails = SpareRead(before) || MainWrite(s) || MainRead(s);
      FUZZ_CHECK(st.ok() != fails, what + (fails ? ": succeeded against a fault rule" : ""));
      if (!st.ok()) FUZZ_CHECK(st.IsIOError(), what);
    }
    Adopt(Observe(), what, [&](uint64_t sec, uint32_t, uint32_t after) {
      return sec == s && st.ok() && after == kNormal;
    });
  }

  void DoMarkPending() {
    const uint64_t s = Sector();
    const Status st = engine_->MarkPending(s);
    const std::string what = "mark-pending " + std::to_string(s) + ": " + st.ToString();
    if (s >= t_.sectors || IsSlot(state_[s])) {
      FUZZ_CHECK(st.code() == Status::Code::kInvalidArgument, what);
      return AdoptUnchanged(what);
    }
    FUZZ_CHECK(st.ok(), what);
    Adopt(Observe(), what, [&](uint64_t sec, uint32_t, uint32_t after) { return sec == s && after == kPendingSlot; });
  }

  void DoAddRule() {
    const uint8_t flags = in_->U8();
    FaultRule r;
    r.device = flags & 1 ? Device::kSpare : Device::kMain;
    r.op = static_cast<FaultOp>((flags >> 1) % 3);
    const uint64_t n = r.device == Device::kMain ? t_.sectors : t_.slots;
    r.sectors.first = in_->U8() % (n + 2);
    r.sectors.count = in_->U8() % 5;
    FaultRule added;
    const Status st = engine_->AddFaultRule(r, &added);
    const bool valid = r.sectors.count > 0 && r.sectors.first < n && r.sectors.count <= n - r.sectors.first;
    FUZZ_CHECK(st.ok() == valid, "add rule " + r.ToString() + ": " + st.ToString());
    if (st.ok()) {
      FUZZ_CHECK(added.id != 0 && added.device == r.device && added.op == r.op &&
                     added.sectors.first == r.sectors.first && added.sectors.count == r.sectors.count,
                 "the added rule differs: " + added.ToString());
      rules_.push_back(added);
    } else {
      FUZZ_CHECK(st.code() == Status::Code::kInvalidArgument, st.ToString());
    }
    AdoptUnchanged("add rule");
  }

  void DoRemoveRule() {
    const uint8_t pick = in_->U8();
    // Mostly a live rule; sometimes an id that does not exist.
    const uint64_t id = !rules_.empty() && pick < 200 ? rules_[pick % rules_.size()].id : pick;
    const Status st = engine_->RemoveFaultRule(id);
    auto it = std::find_if(rules_.begin(), rules_.end(), [&](const FaultRule& r) { return r.id == id; });
    FUZZ_CHECK(st.ok() == (it != rules_.end()), "remove rule " + std::to_string(id) + ": " + st.ToString());
    if (st.ok()) {
      rules_.erase(it);
    } else {
      FUZZ_CHECK(st.IsNotFound(), st.ToString());
    }
    AdoptUnchanged("remove rule");
  }

  const Template& t_;
  Reader* const in_;
  std::unique_ptr<MemEnv> env_;
  std::string db_;
  std::unique_ptr<Engine> engine_;
  std::string img_;
  std::vector<uint8_t> known_;
  std::vector<uint32_t> state_;
  std::vector<FaultRule> rules_;
  uint64_t writes_ = 0;
};

}  // namespace
}  // namespace remapfs::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  remapfs::fuzz::Quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  remapfs::fuzz::Reader in(data, size);
  const bool big = in.U8() & 1;
  remapfs::fuzz::Harness h(remapfs::fuzz::Geometry(big), &in);
  h.Run();
  return 0;
}
