#include "store/control_protocol.h"

#include <cmath>
#include <limits>

namespace remapfs {

using json = ControlJson;

namespace {

// The request's and the reply's own keys; the forms' keys are in their
// ToJson and FromJson below.
constexpr const char* kVerbKey = "verb";
constexpr const char* kOkKey = "ok";

constexpr ControlVerb kVerbs[] = {ControlVerb::kStatus,      ControlVerb::kList,       ControlVerb::kFaultList,
                                  ControlVerb::kFaultAdd,    ControlVerb::kFaultRemove, ControlVerb::kFaultClear,
                                  ControlVerb::kRemap,       ControlVerb::kUnremap,    ControlVerb::kMarkPending,
                                  ControlVerb::kFlush,       ControlVerb::kScrubStart, ControlVerb::kScrubPause,
                                  ControlVerb::kScrubResume, ControlVerb::kScrubStop,  ControlVerb::kScrubStatus};

// Checked reads of a member of untrusted JSON. `def`: the value when the
// member is absent (nullopt: it is required).
const json* Member(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

Status Missing(const char* key) { return Status::InvalidArgument(std::string("'") + key + "' is missing"); }

// Floats, negative numbers and numbers above T's range are refused:
// converting them would be undefined behaviour or wrap around.
template <typename T>
Status Whole(const json& j, const char* key, std::optional<T> def, T* out) {
  const json* v = Member(j, key);
  if (!v) {
    if (!def) return Missing(key);
    *out = *def;
    return Status::OK();
  }
  std::optional<uint64_t> u;
  if (v->is_number_unsigned()) {
    u = v->get<uint64_t>();
  } else if (v->is_number_integer() && v->get<int64_t>() >= 0) {
    u = static_cast<uint64_t>(v->get<int64_t>());
  }
  if (!u || *u > std::numeric_limits<T>::max()) {
    return Status::InvalidArgument(std::string("'") + key + "' must be a whole number from 0 to " +
                                   std::to_string(std::numeric_limits<T>::max()));
  }
  *out = static_cast<T>(*u);
  return Status::OK();
}

Status Text(const json& j, const char* key, std::optional<std::string> def, std::string* out) {
  const json* v = Member(j, key);
  if (!v) {
    if (!def) return Missing(key);
    *out = *def;
    return Status::OK();
  }
  if (!v->is_string()) return Status::InvalidArgument(std::string("'") + key + "' must be a string");
  *out = v->get<std::string>();
  return Status::OK();
}

Status Number(const json& j, const char* key, double def, double* out) {
  const json* v = Member(j, key);
  if (!v) {
    *out = def;
    return Status::OK();
  }
  if (!v->is_number()) return Status::InvalidArgument(std::string("'") + key + "' must be a number");
  *out = v->get<double>();
  return Status::OK();
}

Status Bool(const json& j, const char* key, bool* out) {
  const json* v = Member(j, key);
  if (!v) return Missing(key);
  if (!v->is_boolean()) return Status::InvalidArgument(std::string("'") + key + "' must be true or false");
  *out = v->get<bool>();
  return Status::OK();
}

// Runs the reads in order; the first failure wins.
Status All(std::initializer_list<Status> reads) {
  for (const Status& s : reads) {
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status BadRequest(const Status& s) { return Status::InvalidArgument("bad request: " + s.message()); }

Status CountersFromJson(const json& j, std::vector<std::pair<std::string, uint64_t>>* counters) {
  const json* c = Member(j, "counters");
  if (!c || !c->is_object()) return Status::InvalidArgument("'counters' must be an object");
  counters->clear();
  for (const auto& [name, value] : c->items()) {
    uint64_t n = 0;
    Status s = Whole<uint64_t>(*c, name.c_str(), std::nullopt, &n);
    if (!s.ok()) return s;
    counters->emplace_back(name, n);
  }
  return Status::OK();
}

Status HealthFromJson(const json& j, Health* h) {
  const json* slots = Member(j, "slots");
  if (!slots || !slots->is_object()) return Status::InvalidArgument("'slots' must be an object");
  uint64_t table_bytes = 0;
  Status s = All({Whole<uint64_t>(j, "remapped_sectors", std::nullopt, &h->remapped_sectors),
                  Whole<uint64_t>(j, "pending_sectors", std::nullopt, &h->pending_sectors),
                  Whole<uint32_t>(*slots, "total", std::nullopt, &h->slots_total),
                  Whole<uint32_t>(*slots, "free", std::nullopt, &h->slots_free),
                  Whole<uint32_t>(*slots, "used", std::nullopt, &h->slots_used),
                  Whole<uint32_t>(*slots, "bad", std::nullopt, &h->slots_bad),
                  Whole<uint32_t>(*slots, "quarantined", std::nullopt, &h->slots_quarantined),
                  Whole<uint64_t>(j, "table_bytes", std::nullopt, &table_bytes),
                  Bool(j, "was_clean", &h->was_clean),
                  Text(j, "store_error", std::nullopt, &h->store_error),
                  Text(j, "sync_error", std::nullopt, &h->sync_error),
                  Text(j, "previous_store_error", std::nullopt, &h->previous_store_error),
                  CountersFromJson(j, &h->counters)});
  h->table_bytes = static_cast<size_t>(table_bytes);
  return s;
}

ControlJson HealthToJson(const Health& h) {
  json counters = json::object();
  for (const auto& [name, value] : h.counters) counters[name] = value;
  return json{{"state", h.State()},
              {"remapped_sectors", h.remapped_sectors},
              {"pending_sectors", h.pending_sectors},
              {"slots", {{"total", h.slots_total},
                         {"free", h.slots_free},
                         {"used", h.slots_used},
                         {"bad", h.slots_bad},
                         {"quarantined", h.slots_quarantined}}},
              {"table_bytes", h.table_bytes},
              {"was_clean", h.was_clean},
              {"store_error", h.store_error},
              {"sync_error", h.sync_error},
              {"previous_store_error", h.previous_store_error},
              {"counters", counters}};
}

}  // namespace

std::string_view ControlVerbName(ControlVerb verb) {
  switch (verb) {
    case ControlVerb::kStatus: return "status";
    case ControlVerb::kList: return "list";
    case ControlVerb::kFaultList: return "fault-list";
    case ControlVerb::kFaultAdd: return "fault-add";
    case ControlVerb::kFaultRemove: return "fault-remove";
    case ControlVerb::kFaultClear: return "fault-clear";
    case ControlVerb::kRemap: return "remap";
    case ControlVerb::kUnremap: return "unremap";
    case ControlVerb::kMarkPending: return "mark-pending";
    case ControlVerb::kFlush: return "flush";
    case ControlVerb::kScrubStart: return "scrub-start";
    case ControlVerb::kScrubPause: return "scrub-pause";
    case ControlVerb::kScrubResume: return "scrub-resume";
    case ControlVerb::kScrubStop: return "scrub-stop";
    case ControlVerb::kScrubStatus: return "scrub-status";
  }
  return "?";
}

bool ChangesSet(ControlVerb verb) {
  switch (verb) {
    case ControlVerb::kFaultAdd:
    case ControlVerb::kFaultRemove:
    case ControlVerb::kFaultClear:
    case ControlVerb::kRemap:
    case ControlVerb::kUnremap:
    case ControlVerb::kMarkPending:
    case ControlVerb::kScrubStart:
    case ControlVerb::kScrubPause:
    case ControlVerb::kScrubResume:
    case ControlVerb::kScrubStop:
      return true;
    case ControlVerb::kStatus:
    case ControlVerb::kList:
    case ControlVerb::kFaultList:
    case ControlVerb::kFlush:
    case ControlVerb::kScrubStatus:
      return false;
  }
  return false;
}

ControlVerb SectorChangeVerb(SectorChange change) {
  switch (change) {
    case SectorChange::kRemap: return ControlVerb::kRemap;
    case SectorChange::kUnremap: return ControlVerb::kUnremap;
    case SectorChange::kMarkPending: return ControlVerb::kMarkPending;
  }
  return ControlVerb::kRemap;
}

std::optional<SectorChange> VerbSectorChange(ControlVerb verb) {
  for (SectorChange c : {SectorChange::kRemap, SectorChange::kUnremap, SectorChange::kMarkPending}) {
    if (SectorChangeVerb(c) == verb) return c;
  }
  return std::nullopt;
}

json ControlRequestToJson(const ControlRequest& r) {
  json j{{kVerbKey, ControlVerbName(r.verb)}};
  if (r.verb == ControlVerb::kList) {
    j["first"] = r.first;
    j["end"] = r.end;
  } else if (r.verb == ControlVerb::kFaultAdd) {
    j["rule"] = FaultRuleToJson(r.rule);
  } else if (r.verb == ControlVerb::kFaultRemove) {
    j["id"] = r.id;
  } else if (VerbSectorChange(r.verb)) {
    j["sector"] = r.sector;
  } else if (r.rate && (r.verb == ControlVerb::kScrubStart || r.verb == ControlVerb::kScrubResume)) {
    j["rate"] = *r.rate;
  }
  return j;
}

Status ControlVerbFromJson(const json& j, ControlVerb* verb) {
  std::string name;
  Status s = Text(j, kVerbKey, std::nullopt, &name);
  if (!s.ok()) return BadRequest(s);
  for (ControlVerb v : kVerbs) {
    if (ControlVerbName(v) == name) {
      *verb = v;
      return Status::OK();
    }
  }
  return Status::InvalidArgument("unknown verb '" + name + "'");
}

Status ControlRequestFromJson(const json& j, ControlRequest* r) {
  *r = ControlRequest{};
  Status s = ControlVerbFromJson(j, &r->verb);
  if (!s.ok()) return s;
  if (r->verb == ControlVerb::kList) {
    s = All({Whole<uint64_t>(j, "first", 0, &r->first), Whole<uint64_t>(j, "end", UINT64_MAX, &r->end)});
  } else if (r->verb == ControlVerb::kFaultAdd) {
    const json* rule = Member(j, "rule");
    s = rule ? FaultRuleFromJson(*rule, &r->rule) : Missing("rule");
  } else if (r->verb == ControlVerb::kFaultRemove) {
    s = Whole<uint64_t>(j, "id", std::nullopt, &r->id);
  } else if (VerbSectorChange(r->verb)) {
    s = Whole<uint64_t>(j, "sector", std::nullopt, &r->sector);
  } else if (Member(j, "rate") && (r->verb == ControlVerb::kScrubStart || r->verb == ControlVerb::kScrubResume)) {
    uint64_t rate = 0;
    s = Whole<uint64_t>(j, "rate", std::nullopt, &rate);
    r->rate = rate;
  }
  return s.ok() ? s : BadRequest(s);
}

json ControlReplyOk(json result) { return json{{kOkKey, true}, {"result", std::move(result)}}; }

json ControlReplyError(const std::string& message) { return json{{kOkKey, false}, {"error", message}}; }

Status ControlReplyFromJson(const json& reply, json* result) {
  if (!reply.is_object()) return Status::Corruption("bad reply from the daemon: not a JSON object");
  bool ok = false;  // absent: a refusal
  std::string error;
  Status s = All({Member(reply, kOkKey) ? Bool(reply, kOkKey, &ok) : Status::OK(), Text(reply, "error", "failed", &error)});
  if (!s.ok()) return Status::Corruption("bad reply from the daemon: " + s.message());
  if (!ok) return Status::InvalidArgument(error);
  const json* r = Member(reply, "result");
  *result = r ? *r : json();
  return Status::OK();
}

Status ParseControlJson(std::string_view text, json* j) {
  try {
    *j = json::parse(text);
  } catch (const json::exception& e) {
    return Status::InvalidArgument(e.what());
  }
  return Status::OK();
}

json SetStatusToJson(const SetStatus& st) {
  json j = HealthToJson(st.health);
  j["uuid"] = st.uuid;
  j["sector_size"] = st.sector_size;
  j["size"] = st.size;
  j["scrub"] = ScrubStatusToJson(st.scrub);
  const SetPlace& p = st.place;
  j["main"] = p.main;
  j["spare"] = p.spare;
  j["db"] = p.db;
  j["mountpoint"] = p.mountpoint;
  j["pid"] = p.pid;
  j["started_us"] = p.started_us;
  return j;
}

Status SetStatusFromJson(const json& j, SetStatus* st) {
  const json* scrub = Member(j, "scrub");
  return All({HealthFromJson(j, &st->health), Text(j, "uuid", std::nullopt, &st->uuid),
              Whole<uint32_t>(j, "sector_size", std::nullopt, &st->sector_size),
              Whole<uint64_t>(j, "size", std::nullopt, &st->size),
              scrub ? ScrubStatusFromJson(*scrub, &st->scrub) : Missing("scrub"),
              Text(j, "main", "", &st->place.main), Text(j, "spare", "", &st->place.spare),
              Text(j, "db", "", &st->place.db), Text(j, "mountpoint", "", &st->place.mountpoint),
              Whole<int64_t>(j, "pid", 0, &st->place.pid), Whole<int64_t>(j, "started_us", 0, &st->place.started_us)});
}

json ScrubStatusToJson(const ScrubStatus& st) {
  const ScrubState& s = st.state;
  const bool running = s.run == ScrubState::Run::kRunning;
  const double rate = st.bytes_per_second > 0 ? st.bytes_per_second : static_cast<double>(s.rate);
  json eta = nullptr;
  if (running && rate > 0) eta = std::llround(static_cast<double>(st.total_bytes - st.done_bytes) / rate);
  return json{{"state", ScrubRunName(s.run)},
              {"phase", st.in_spare ? "spare" : "main"},
              {"position", s.position},
              {"done_bytes", st.done_bytes},
              {"total_bytes", st.total_bytes},
              {"percent", st.total_bytes ? 100.0 * static_cast<double>(st.done_bytes) /
                                               static_cast<double>(st.total_bytes)
                                         : 0.0},
              {"rate_limit", s.rate},
              {"bytes_per_second", st.bytes_per_second},
              {"eta_seconds", eta},
              {"pass_started_us", s.pass_started_us},
              {"last_pass_us", s.last_pass_us},
              {"error", st.error}};
}

Status ScrubStatusFromJson(const json& j, ScrubStatus* st) {
  std::string run, phase;
  uint64_t started = 0, last = 0;
  Status s = All({Text(j, "state", std::nullopt, &run), Text(j, "phase", std::nullopt, &phase),
                  Whole<uint64_t>(j, "position", std::nullopt, &st->state.position),
                  Whole<uint64_t>(j, "done_bytes", std::nullopt, &st->done_bytes),
                  Whole<uint64_t>(j, "total_bytes", std::nullopt, &st->total_bytes),
                  Whole<uint64_t>(j, "rate_limit", std::nullopt, &st->state.rate),
                  Number(j, "bytes_per_second", 0, &st->bytes_per_second),
                  Whole<uint64_t>(j, "pass_started_us", std::nullopt, &started),
                  Whole<uint64_t>(j, "last_pass_us", std::nullopt, &last),
                  Text(j, "error", std::nullopt, &st->error)});
  if (!s.ok()) return s;
  const std::optional<ScrubState::Run> r = ParseScrubRun(run);
  if (!r) return Status::InvalidArgument("'state' must be idle, running or paused");
  if (phase != "main" && phase != "spare") return Status::InvalidArgument("'phase' must be main or spare");
  st->state.run = *r;
  st->in_spare = phase == "spare";
  st->state.pass_started_us = static_cast<int64_t>(started);
  st->state.last_pass_us = static_cast<int64_t>(last);
  return Status::OK();
}

json MappingToJson(const Mapping& m) {
  json j{{"sector", m.sector}, {"state", m.pending() ? "pending" : "remapped"}};
  j["slot"] = m.pending() ? json(nullptr) : json(m.slot);
  return j;
}

Status MappingFromJson(const json& j, Mapping* m) {
  std::string state;
  Status s = All({Whole<uint64_t>(j, "sector", std::nullopt, &m->sector), Text(j, "state", std::nullopt, &state)});
  if (!s.ok()) return s;
  if (state == "pending") {
    m->slot = kPendingSlot;
    return Status::OK();
  }
  if (state != "remapped") return Status::InvalidArgument("'state' must be remapped or pending");
  s = Whole<uint32_t>(j, "slot", std::nullopt, &m->slot);
  if (s.ok() && m->pending()) return Status::InvalidArgument("'slot' of a remapped sector is out of range");
  return s;
}

json FaultRuleToJson(const FaultRule& r) {
  return json{{"id", r.id},
              {"device", DeviceName(r.device)},
              {"first", r.sectors.first},
              {"count", r.sectors.count},
              {"op", FaultOpName(r.op)},
              {"times", r.times},
              {"probability", r.probability},
              {"seed", r.seed},
              {"delay_ms", r.delay_ms}};
}

Status FaultRuleFromJson(const json& j, FaultRule* r) {
  std::string device, op;
  Status s = All({Text(j, "device", std::nullopt, &device), Text(j, "op", "both", &op)});
  if (s.ok() && !ParseDevice(device)) s = Status::InvalidArgument("device must be main or spare");
  if (s.ok() && !ParseFaultOp(op)) s = Status::InvalidArgument("op must be read, write or both");
  if (s.ok()) {
    r->device = *ParseDevice(device);
    r->op = *ParseFaultOp(op);
    s = All({Whole<uint64_t>(j, "id", 0, &r->id), Whole<uint64_t>(j, "first", std::nullopt, &r->sectors.first),
             Whole<uint64_t>(j, "count", 1, &r->sectors.count), Whole<uint64_t>(j, "times", 0, &r->times),
             Number(j, "probability", 1.0, &r->probability), Whole<uint64_t>(j, "seed", 0, &r->seed),
             Whole<uint32_t>(j, "delay_ms", 0, &r->delay_ms)});
  }
  return s.ok() ? s : Status::InvalidArgument("bad fault rule: " + s.message());
}

json EventToJson(const Event& e) {
  return json{{"time_us", e.time_us},
              {"kind", EventKindName(e.kind)},
              {"sector", e.sector},
              {"slot", e.slot < 0 ? json(nullptr) : json(e.slot)},
              {"detail", e.detail}};
}

json CheckResultToJson(const std::vector<std::string>& problems) {
  return json{{"ok", problems.empty()}, {"problems", problems}};
}

}  // namespace remapfs
