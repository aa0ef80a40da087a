#include "tests/support/engine_model.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>

#include "store/check.h"

namespace remapfs::test {

// Returns the broken promise from the enclosing Status function.
#define MODEL_CHECK(cond, why)                                   \
  do {                                                           \
    if (!(cond)) return Broken(std::string(#cond ": ") + (why)); \
  } while (0)

namespace {

std::string StateName(uint32_t st) {
  if (st == kNormalSector) return "normal";
  if (st == kPendingSlot) return "pending";
  return "slot " + std::to_string(st);
}

std::string Span(uint64_t offset, size_t n, uint64_t ss) {
  return std::to_string(offset) + "+" + std::to_string(n) + " (sectors " + std::to_string(offset / ss) + "-" +
         std::to_string((offset + n - 1) / ss) + ")";
}

bool IsEio(const Status& s) { return s.IsIOError() && s.ToErrno() == EIO; }

}  // namespace

uint64_t CounterValue(const Health& h, Counter c) {
  for (const auto& [name, v] : h.counters) {
    if (name == CounterName(c)) return v;
  }
  std::fprintf(stderr, "Health has no counter %s\n", std::string(CounterName(c)).c_str());
  std::abort();
}

Status CheckTable(Engine* e, std::vector<uint32_t>* states) {
  if (states) states->assign(e->sector_count(), kNormalSector);
  std::set<uint32_t> slots;
  uint64_t remapped = 0, pending = 0;
  const Health h = e->GetHealth();
  std::optional<uint64_t> prev;
  for (const Mapping& m : e->List(0, UINT64_MAX)) {
    const std::string where = "sector " + std::to_string(m.sector) + ": ";
    if (m.sector >= e->sector_count()) return Status::Corruption(where + "past MAIN's end");
    if (prev && m.sector <= *prev) return Status::Corruption(where + "the table is not in sector order");
    prev = m.sector;
    if (m.pending()) {
      ++pending;
    } else {
      ++remapped;
      const std::string slot = "slot " + std::to_string(m.slot);
      if (m.slot >= h.slots_total) return Status::Corruption(where + slot + " out of range");
      if (!slots.insert(m.slot).second) return Status::Corruption(where + slot + " is mapped twice");
    }
    if (states) (*states)[m.sector] = m.slot;
  }
  if (h.remapped_sectors != remapped || h.pending_sectors != pending || h.slots_used != remapped) {
    return Status::Corruption("Health (" + std::to_string(h.remapped_sectors) + " remapped, " +
                              std::to_string(h.pending_sectors) + " pending, " + std::to_string(h.slots_used) +
                              " slots used) disagrees with the table (" + std::to_string(remapped) + " remapped, " +
                              std::to_string(pending) + " pending)");
  }
  if (uint64_t{h.slots_free} + h.slots_used + h.slots_bad + h.slots_quarantined != h.slots_total) {
    return Status::Corruption("the slot states do not add up to " + std::to_string(h.slots_total));
  }
  return Status::OK();
}

Status CheckSetClean(Env* env, const SetPaths& paths) {
  std::vector<std::string> problems;
  Status s = CheckSet(env, paths, &problems);
  if (!s.ok()) return s;
  if (!problems.empty()) {
    return Status::Corruption(std::to_string(problems.size()) + " problem(s), first: " + problems.front());
  }
  return Status::OK();
}

EngineModel::EngineModel(const Geometry& geometry, std::string image)
    : geo_(geometry), img_(std::move(image)), known_(img_.size(), 1), state_(geo_.sectors, kNormalSector) {}

// --- the fault rules as the model sees them ---

bool EngineModel::MayFail(Device d, FaultOp op, uint64_t sector) const {
  return std::any_of(rules_.begin(), rules_.end(), [&](const FaultRule& r) {
    return r.device == d && (r.op == FaultOp::kBoth || r.op == op) && sector >= r.sectors.first &&
           sector < r.sectors.end() && r.delay_ms == 0;
  });
}

bool EngineModel::MustFail(Device d, FaultOp op, uint64_t sector) const {
  return std::any_of(rules_.begin(), rules_.end(), [&](const FaultRule& r) {
    return r.device == d && (r.op == FaultOp::kBoth || r.op == op) && sector >= r.sectors.first &&
           sector < r.sectors.end() && r.delay_ms == 0 && r.times == 0 && r.probability >= 1.0;
  });
}

// --- observing the engine ---

void EngineModel::Note(std::string what) {
  what = "#" + std::to_string(ops_++) + " " + what;
  if (trace_) std::fprintf(stderr, "%s\n", what.c_str());
  history_.push_back(std::move(what));
  if (history_.size() > 40) history_.pop_front();
}

Status EngineModel::Broken(const std::string& why) const {
  return Status::Corruption((history_.empty() ? std::string() : history_.back() + ": ") + why);
}

std::string EngineModel::History() const {
  std::string s;
  for (const std::string& h : history_) s += h + "\n";
  return s;
}

Status EngineModel::Observe(Engine* e, std::vector<uint32_t>* obs) {
  MODEL_CHECK(e->sector_count() == geo_.sectors, "the engine's MAIN has another size");
  Status s = CheckTable(e, obs);
  MODEL_CHECK(s.ok(), s.ToString());
  const Health h = e->GetHealth();
  MODEL_CHECK(h.slots_total == geo_.slots, std::to_string(h.slots_total) + " slots");
  MODEL_CHECK(h.store_error.empty(), h.store_error);
  return Status::OK();
}

std::vector<EngineModel::Allow> EngineModel::CurrentAllow() const {
  std::vector<Allow> a(geo_.sectors);
  for (uint64_t s = 0; s < geo_.sectors; ++s) {
    a[s].normal = state_[s] == kNormalSector;
    a[s].pending = state_[s] == kPendingSlot;
    a[s].remapped = IsSlot(state_[s]);
  }
  return a;
}

// Checks that every sector's new state is one the operation allows, then
// makes the engine's table the model's.
Status EngineModel::Adopt(const std::vector<uint32_t>& obs, const std::vector<Allow>& allow) {
  for (uint64_t s = 0; s < geo_.sectors; ++s) {
    const uint32_t before = state_[s], after = obs[s];
    const bool ok = after == kNormalSector  ? allow[s].normal
                    : after == kPendingSlot ? allow[s].pending
                                            : allow[s].remapped;
    const std::string change =
        "sector " + std::to_string(s) + " went from " + StateName(before) + " to " + StateName(after);
    MODEL_CHECK(ok, change + ", which this operation does not allow");
    MODEL_CHECK(!IsSlot(before) || !IsSlot(after) || before == after || allow[s].new_slot,
                change + " without a reason");
  }
  state_ = obs;
  return Status::OK();
}

Status EngineModel::ObserveUnchanged(Engine* e) {
  std::vector<uint32_t> obs;
  if (Status check = Observe(e, &obs); !check.ok()) return check;
  return Adopt(obs, CurrentAllow());
}

std::string EngineModel::SectorName(uint64_t sector) const {
  return std::to_string(sector) + " (" + (sector < geo_.sectors ? StateName(state_[sector]) : "past the end") + ")";
}

Status EngineModel::Refused(Engine* e, const Status& s) {
  MODEL_CHECK(s.code() == Status::Code::kInvalidArgument, s.ToString());
  return ObserveUnchanged(e);
}

Status EngineModel::CheckRules(Engine* e) {
  const std::vector<FaultRule> live = e->ListFaultRules();
  MODEL_CHECK(live.size() == rules_.size(), "the engine has " + std::to_string(live.size()) + " rules");
  for (size_t i = 0; i < live.size(); ++i) {
    const FaultRule &a = live[i], &b = rules_[i];
    MODEL_CHECK(a.id == b.id && a.ToString() == b.ToString() && a.seed == b.seed,
                "rule " + a.ToString() + " (id " + std::to_string(a.id) + ") differs from " + b.ToString());
  }
  return Status::OK();
}

// --- writes ---

// The states a sector the write got through may be in.
EngineModel::Allow EngineModel::Written(uint64_t sector) const {
  const uint32_t st = state_[sector];
  Allow a;
  if (st == kNormalSector) {
    a.normal = !MustFail(Device::kMain, FaultOp::kWrite, sector);
    a.remapped = MayFail(Device::kMain, FaultOp::kWrite, sector);
  } else if (st == kPendingSlot) {
    a.remapped = true;  // only got through when fully written
  } else {
    a.remapped = true;
    a.new_slot = MayFail(Device::kSpare, FaultOp::kWrite, st);
  }
  return a;
}

Status EngineModel::Write(Engine* e, uint64_t offset, std::string_view data) {
  WriteOutcome w;
  w.offset = offset;
  w.n = data.size();
  w.written_end = offset + data.size();
  const uint64_t exhausted0 = CounterValue(e->GetHealth(), Counter::kSpareExhausted);
  w.status = e->Write(offset, w.n, data.data());
  Note("write " + Span(offset, w.n, ss()) + ": " + w.status.ToString());
  if (Status check = Observe(e, &w.obs); !check.ok()) return check;
  w.exhausted = CounterValue(e->GetHealth(), Counter::kSpareExhausted) > exhausted0;
  w.allow = CurrentAllow();
  Status check = CheckWrite(&w);
  if (check.ok()) check = Adopt(w.obs, w.allow);
  if (!check.ok()) return check;
  for (uint64_t i = offset; i < w.written_end; ++i) {
    img_[i] = data[i - offset];
    known_[i] = 1;
  }
  if (w.uncertain) std::fill(known_.begin() + offset, known_.begin() + offset + w.n, 0);
  return Status::OK();
}

void EngineModel::WriteStops(const WriteOutcome& w, std::optional<uint64_t>* must_fail_at,
                             std::optional<uint64_t>* may_fail_at) const {
  // A partial write must fail at a pending sector, at a MAIN sector that
  // fails writes and reads, and at a slot that fails reads.
  for (uint64_t sec = w.offset / ss(); sec <= (w.offset + w.n - 1) / ss(); ++sec) {
    if (w.Full(sec, ss())) continue;
    const uint32_t st = state_[sec];
    if (st == kPendingSlot ||
        (st == kNormalSector && MustFail(Device::kMain, FaultOp::kWrite, sec) &&
         MustFail(Device::kMain, FaultOp::kRead, sec)) ||
        (IsSlot(st) && MustFail(Device::kSpare, FaultOp::kRead, st))) {
      *must_fail_at = sec;
      return;
    }
    if (!*may_fail_at && IsSlot(st) && MayFail(Device::kSpare, FaultOp::kRead, st)) *may_fail_at = sec;
  }
}

// Where the write stopped, from what it answered and the table it left.
Status EngineModel::CheckWrite(WriteOutcome* w) {
  if (!w->status.ok()) return CheckWriteFailure(w);
  std::optional<uint64_t> must_fail_at, may_fail_at;
  WriteStops(*w, &must_fail_at, &may_fail_at);
  MODEL_CHECK(!must_fail_at, "the write must fail at sector " + std::to_string(must_fail_at.value_or(0)));
  MODEL_CHECK(!w->exhausted, "succeeded although SPARE ran out");
  for (uint64_t sec = w->offset / ss(); sec <= (w->offset + w->n - 1) / ss(); ++sec) w->allow[sec] = Written(sec);
  return Status::OK();
}

Status EngineModel::CheckWriteFailure(WriteOutcome* w) {
  ++stats_.write_eio;
  MODEL_CHECK(IsEio(w->status), w->status.ToString());
  const uint64_t first = w->offset / ss(), last = (w->offset + w->n - 1) / ss();
  std::optional<uint64_t> must_fail_at, may_fail_at;
  WriteStops(*w, &must_fail_at, &may_fail_at);
  std::vector<uint64_t> newly_pending;
  for (uint64_t sec = 0; sec < geo_.sectors; ++sec) {
    if (state_[sec] == kNormalSector && w->obs[sec] == kPendingSlot) newly_pending.push_back(sec);
  }
  MODEL_CHECK(newly_pending.size() <= 1, "a write made several sectors pending");
  uint64_t fail_at = 0;
  if (newly_pending.size() == 1) {
    // A partial write whose MAIN write failed and whose MAIN read (for the
    // rest of the sector) failed too.
    fail_at = newly_pending[0];
    const std::string sector = "sector " + std::to_string(fail_at);
    MODEL_CHECK(fail_at >= first && fail_at <= last, sector + " is outside the write");
    MODEL_CHECK(!w->Full(fail_at, ss()), "a whole-sector write made " + sector + " pending");
    MODEL_CHECK(MayFail(Device::kMain, FaultOp::kWrite, fail_at) && MayFail(Device::kMain, FaultOp::kRead, fail_at),
                sector + " became pending without fault rules to explain it");
    MODEL_CHECK(!must_fail_at || fail_at <= *must_fail_at, "the write went on past a sector that must fail");
    MODEL_CHECK(!w->exhausted, "both SPARE ran out and " + sector + " became pending");
    w->allow[fail_at] = Allow{.pending = true};
  } else if (w->exhausted || may_fail_at) {
    w->uncertain = true;  // unknown which sector stopped it
    ++stats_.uncertain;
  } else {
    MODEL_CHECK(must_fail_at, "no pending sector, fault rule or exhausted SPARE explains the EIO");
    fail_at = *must_fail_at;
    MODEL_CHECK(state_[fail_at] != kNormalSector, "sector " + std::to_string(fail_at) + " must have become pending");
  }
  for (uint64_t sec = first; sec <= last && (w->uncertain || sec < fail_at); ++sec) {
    Allow& a = w->allow[sec];
    if (!w->uncertain) {
      a = Written(sec);
    } else if (state_[sec] == kNormalSector) {
      a.remapped = MayFail(Device::kMain, FaultOp::kWrite, sec);
    } else if (state_[sec] == kPendingSlot) {
      a.remapped = w->Full(sec, ss());
    } else {
      a.new_slot = MayFail(Device::kSpare, FaultOp::kWrite, state_[sec]);
    }
  }
  w->written_end = w->uncertain ? w->offset : std::max(w->offset, fail_at * ss());
  return Status::OK();
}

// --- reads ---

Status EngineModel::Read(Engine* e, uint64_t offset, size_t n) {
  std::string buf(n, '\0');
  const Status s = e->Read(offset, n, buf.data());
  Note("read " + Span(offset, n, ss()) + ": " + s.ToString());
  std::vector<uint32_t> obs;
  if (Status check = Observe(e, &obs); !check.ok()) return check;
  const uint64_t first = offset / ss(), last = (offset + n - 1) / ss();
  std::vector<Allow> allow = CurrentAllow();
  if (!s.ok()) {
    ++stats_.read_eio;
    MODEL_CHECK(IsEio(s), s.ToString());
    if (Status check = CheckReadFailure(first, last, obs, &allow); !check.ok()) return check;
    return Adopt(obs, allow);
  }
  for (uint64_t sec = first; sec <= last; ++sec) {
    const uint32_t st = state_[sec];
    MODEL_CHECK(st != kPendingSlot && !(st == kNormalSector && MustFail(Device::kMain, FaultOp::kRead, sec)) &&
                    !(IsSlot(st) && MustFail(Device::kSpare, FaultOp::kRead, st)),
                "succeeded over sector " + std::to_string(sec) + ", which is " + StateName(st) + " and must fail");
  }
  for (size_t i = 0; i < n; ++i) {
    if (!known_[offset + i]) {
      img_[offset + i] = buf[i];
      known_[offset + i] = 1;
    }
    MODEL_CHECK(buf[i] == img_[offset + i], "byte " + std::to_string(offset + i) + " (sector " +
                                                std::to_string((offset + i) / ss()) + ", " +
                                                StateName(state_[(offset + i) / ss()]) + ") differs from the model");
  }
  return Adopt(obs, allow);
}

// A read failed: something in [first, last] explains it, and only MAIN
// sectors it met before it stopped became pending.
Status EngineModel::CheckReadFailure(uint64_t first, uint64_t last, const std::vector<uint32_t>& obs,
                                     std::vector<Allow>* allow) {
  // Where the read must stop (a pending sector, a slot that always fails),
  // the first MAIN sector that must fail, and whether a slot before it may
  // fail without a trace.
  std::optional<uint64_t> stop_at, main_must_fail_at;
  bool quiet_before = false;
  for (uint64_t sec = first; sec <= last; ++sec) {
    const uint32_t st = state_[sec];
    if (st == kPendingSlot || (IsSlot(st) && MustFail(Device::kSpare, FaultOp::kRead, st))) {
      stop_at = sec;
      break;
    }
    if (!main_must_fail_at && st == kNormalSector && MustFail(Device::kMain, FaultOp::kRead, sec)) {
      main_must_fail_at = sec;
    }
    if (!main_must_fail_at && IsSlot(st) && MayFail(Device::kSpare, FaultOp::kRead, st)) quiet_before = true;
  }
  std::vector<uint64_t> newly_pending;
  for (uint64_t sec = 0; sec < geo_.sectors; ++sec) {
    if (state_[sec] != kNormalSector || obs[sec] != kPendingSlot) continue;
    const std::string sector = "sector " + std::to_string(sec);
    MODEL_CHECK(sec >= first && sec <= last, sector + " is outside the read");
    MODEL_CHECK(MayFail(Device::kMain, FaultOp::kRead, sec), sector + " became pending without a read fault rule");
    MODEL_CHECK(!stop_at || sec < *stop_at, "the read went on past sector " + std::to_string(stop_at.value_or(0)));
    newly_pending.push_back(sec);
    (*allow)[sec] = Allow{.pending = true};
  }
  MODEL_CHECK(stop_at || !newly_pending.empty() || quiet_before, "no pending sector or fault rule explains the EIO");
  if (main_must_fail_at && !stop_at && !quiet_before) {
    MODEL_CHECK(!newly_pending.empty() && newly_pending.front() <= *main_must_fail_at,
                "sector " + std::to_string(*main_must_fail_at) + " must have become pending");
  }
  return Status::OK();
}

Status EngineModel::Scan(Engine* e, std::mt19937_64* shuffle) {
  Note("scan");
  std::vector<uint64_t> order(geo_.sectors);
  for (uint64_t i = 0; i < geo_.sectors; ++i) order[i] = i;
  if (shuffle) std::shuffle(order.begin(), order.end(), *shuffle);
  for (uint64_t sec : order) {
    if (Status check = Read(e, sec * ss(), ss()); !check.ok()) return check;
  }
  return Status::OK();
}

// --- the other calls ---

Status EngineModel::Flush(Engine* e) {
  const Status s = e->Flush();
  Note("flush: " + s.ToString());
  MODEL_CHECK(s.ok(), s.ToString());
  MODEL_CHECK(e->GetHealth().slots_quarantined == 0, "a flush left slots quarantined");
  return ObserveUnchanged(e);
}

Status EngineModel::Remap(Engine* e, uint64_t sector) {
  const uint64_t exhausted0 = CounterValue(e->GetHealth(), Counter::kSpareExhausted);
  const Status s = e->Remap(sector);
  const bool valid = sector < geo_.sectors && state_[sector] == kNormalSector;
  Note("remap " + SectorName(sector) + ": " + s.ToString());
  if (!valid) return Refused(e, s);
  std::vector<uint32_t> obs;
  if (Status check = Observe(e, &obs); !check.ok()) return check;
  const bool exhausted = CounterValue(e->GetHealth(), Counter::kSpareExhausted) > exhausted0;
  std::vector<Allow> allow = CurrentAllow();
  if (s.ok()) {
    MODEL_CHECK(!MustFail(Device::kMain, FaultOp::kRead, sector) && !exhausted, "the remap must fail");
    allow[sector] = Allow{.remapped = true};
  } else if (obs[sector] == kPendingSlot) {
    MODEL_CHECK(IsEio(s) && MayFail(Device::kMain, FaultOp::kRead, sector) && !exhausted, s.ToString());
    allow[sector] = Allow{.pending = true};
  } else {
    MODEL_CHECK(IsEio(s) && exhausted, "the remap failed without a reason: " + s.ToString());
  }
  return Adopt(obs, allow);
}

Status EngineModel::Unremap(Engine* e, uint64_t sector) {
  const Status s = e->Unremap(sector);
  Note("unremap " + SectorName(sector) + ": " + s.ToString());
  if (sector >= geo_.sectors) return Refused(e, s);
  const uint32_t st = state_[sector];
  if (st == kNormalSector) {
    MODEL_CHECK(s.IsNotFound(), s.ToString());
    return ObserveUnchanged(e);
  }
  // Copying a slot back reads it, writes MAIN and reads MAIN back.
  auto fails = [&](auto&& fail) {
    return IsSlot(st) && (fail(Device::kSpare, FaultOp::kRead, st) || fail(Device::kMain, FaultOp::kWrite, sector) ||
                          fail(Device::kMain, FaultOp::kRead, sector));
  };
  const bool must = fails([&](Device d, FaultOp op, uint64_t x) { return MustFail(d, op, x); });
  const bool may = fails([&](Device d, FaultOp op, uint64_t x) { return MayFail(d, op, x); });
  std::vector<uint32_t> obs;
  if (Status check = Observe(e, &obs); !check.ok()) return check;
  std::vector<Allow> allow = CurrentAllow();
  if (s.ok()) {
    MODEL_CHECK(!must, "succeeded although the copy back must fail");
    allow[sector] = Allow{.normal = true};
  } else {
    MODEL_CHECK(IsEio(s) && may, "the unremap failed without a reason: " + s.ToString());
  }
  return Adopt(obs, allow);
}

Status EngineModel::MarkPending(Engine* e, uint64_t sector) {
  const Status s = e->MarkPending(sector);
  Note("mark-pending " + SectorName(sector) + ": " + s.ToString());
  if (sector >= geo_.sectors || IsSlot(state_[sector])) return Refused(e, s);
  MODEL_CHECK(s.ok(), s.ToString());
  std::vector<uint32_t> obs;
  if (Status check = Observe(e, &obs); !check.ok()) return check;
  std::vector<Allow> allow = CurrentAllow();
  allow[sector] = Allow{.pending = true};
  return Adopt(obs, allow);
}

Status EngineModel::AddRule(Engine* e, const FaultRule& rule) {
  FaultRule added;
  const Status s = e->AddFaultRule(rule, &added);
  Note("add rule " + rule.ToString() + ": " + s.ToString() + (s.ok() ? " id " + std::to_string(added.id) : ""));
  const uint64_t n = rule.device == Device::kMain ? geo_.sectors : geo_.slots;
  const bool valid = rule.sectors.count > 0 && rule.sectors.first < n && rule.sectors.count <= n - rule.sectors.first &&
                     rule.times <= FaultRule::kMaxTimes && rule.probability > 0.0 && rule.probability <= 1.0 &&
                     rule.delay_ms <= FaultRule::kMaxDelayMs;
  if (valid) {
    MODEL_CHECK(s.ok(), s.ToString());
    MODEL_CHECK(added.id != 0 && added.ToString() == rule.ToString() && added.seed == rule.seed,
                "the rule added differs: " + added.ToString());
    rules_.push_back(added);
  } else {
    MODEL_CHECK(s.code() == Status::Code::kInvalidArgument, s.ToString());
  }
  if (Status check = CheckRules(e); !check.ok()) return check;
  return ObserveUnchanged(e);
}

Status EngineModel::RemoveRule(Engine* e, uint64_t id) {
  const Status s = e->RemoveFaultRule(id);
  Note("remove rule " + std::to_string(id) + ": " + s.ToString());
  auto it = std::find_if(rules_.begin(), rules_.end(), [&](const FaultRule& r) { return r.id == id; });
  if (it != rules_.end()) {
    MODEL_CHECK(s.ok(), s.ToString());
    rules_.erase(it);
  } else {
    MODEL_CHECK(s.IsNotFound(), s.ToString());
  }
  if (Status check = CheckRules(e); !check.ok()) return check;
  return ObserveUnchanged(e);
}

Status EngineModel::ClearRules(Engine* e) {
  e->ClearFaultRules();
  Note("clear rules");
  rules_.clear();
  if (Status check = CheckRules(e); !check.ok()) return check;
  return ObserveUnchanged(e);
}

Status EngineModel::Reopen(std::unique_ptr<Engine>* engine, const OpenFn& open) {
  const std::vector<Mapping> table = (*engine)->List(0, UINT64_MAX);
  Status s = (*engine)->Close();
  Note("close: " + s.ToString());
  MODEL_CHECK(s.ok(), s.ToString());
  engine->reset();
  s = open(engine);
  Note("open: " + s.ToString());
  MODEL_CHECK(s.ok(), s.ToString());
  ++stats_.reopens;
  Engine* e = engine->get();
  const Health h = e->GetHealth();
  MODEL_CHECK(h.was_clean, "an orderly close left the set unclean");
  MODEL_CHECK(h.slots_quarantined == 0, "slots are quarantined after an open");
  MODEL_CHECK(e->List(0, UINT64_MAX) == table, "the table changed across close and open");
  if (Status check = CheckRules(e); !check.ok()) return check;
  return ObserveUnchanged(e);
}

}  // namespace remapfs::test
