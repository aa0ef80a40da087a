// The control channel's protocol and the JSON forms of remapctl's --json:
// each verb name and each JSON form is defined here once, and used by the
// daemon's end (HandleControlRequest), the client's (SetControl's live
// implementation) and remapctl's output alike.
//
// A request is one JSON object a line: {"verb": NAME, arguments}; see
// ControlRequest for the arguments of each verb. A reply is one line too:
// {"ok": true, "result": RESULT} or {"ok": false, "error": "one line"}.
// Results: status: SetStatusToJson; list: an array of MappingToJson;
// fault-list: an array of FaultRuleToJson; fault-add: the added rule; the
// scrub verbs: ScrubStatusToJson (after the change); the other verbs: null.
//
// Parsing never throws: malformed input (JSON from a client or a daemon)
// gets InvalidArgument saying what is wrong with it.
//
// Thread-safety: plain functions and values.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/changes.h"
#include "store/engine.h"
#include "store/fault.h"
#include "store/health.h"
#include "store/remap_table.h"
#include "store/scrub.h"

namespace remapfs {

using ControlJson = nlohmann::ordered_json;

enum class ControlVerb {
  kStatus,
  kList,
  kFaultList,
  kFaultAdd,
  kFaultRemove,
  kFaultClear,
  kRemap,
  kUnremap,
  kMarkPending,
  kFlush,  // makes what the daemon acknowledged durable
  kScrubStart,
  kScrubPause,
  kScrubResume,
  kScrubStop,
  kScrubStatus,
};
// "status", "list", "fault-list", "fault-add", "fault-remove", "fault-clear",
// "remap", "unremap", "mark-pending", "flush", "scrub-start", "scrub-pause",
// "scrub-resume", "scrub-stop", "scrub-status".
std::string_view ControlVerbName(ControlVerb verb);
// Whether the verb changes the set (a read-only mount refuses it).
bool ChangesSet(ControlVerb verb);
// The verb of a manual sector change, and back (nullopt: not such a verb).
ControlVerb SectorChangeVerb(SectorChange change);
std::optional<SectorChange> VerbSectorChange(ControlVerb verb);

// One request. Each verb reads only its own arguments.
struct ControlRequest {
  ControlVerb verb = ControlVerb::kStatus;
  uint64_t first = 0, end = UINT64_MAX;  // list: sectors [first, end)
  FaultRule rule{};                      // fault-add (its id is ignored)
  uint64_t id = 0;                       // fault-remove
  uint64_t sector = 0;                   // remap, unremap, mark-pending
  // scrub-start, scrub-resume: bytes a second, 0 for no limit; absent: the
  // daemon's default (start) or the pass's own (resume).
  std::optional<uint64_t> rate{};
};
ControlJson ControlRequestToJson(const ControlRequest& request);
// The verb of a request object; InvalidArgument with the reply's error line
// when it has none, or an unknown one.
Status ControlVerbFromJson(const ControlJson& j, ControlVerb* verb);
// The whole request; InvalidArgument with the reply's error line when a
// member is missing or malformed (numbers must be whole and in range).
Status ControlRequestFromJson(const ControlJson& j, ControlRequest* request);

ControlJson ControlReplyOk(ControlJson result);
ControlJson ControlReplyError(const std::string& message);
// A reply's result; InvalidArgument with the daemon's error line when it
// refused the request, Corruption when the reply is malformed.
Status ControlReplyFromJson(const ControlJson& reply, ControlJson* result);

// Parses untrusted text (a request or a reply line): the one place where
// the JSON parser's exceptions are caught. InvalidArgument when not JSON.
Status ParseControlJson(std::string_view text, ControlJson* j);

// What `status` reports: {"state", "remapped_sectors", "pending_sectors",
// "slots": {"total", "free", "used", "bad", "quarantined"}, "table_bytes",
// "was_clean", "store_error", "sync_error", "previous_store_error",
// "counters": {NAME: N}, "uuid", "sector_size", "size", "scrub": the
// scrub's form below}; "state" is Health::State(), so FromJson ignores it.
ControlJson SetStatusToJson(const SetStatus& status);
Status SetStatusFromJson(const ControlJson& j, SetStatus* status);

// {"state": "idle" | "running" | "paused", "phase": "main" | "spare",
// "position", "done_bytes", "total_bytes", "percent", "rate_limit" (bytes a
// second, 0: none), "bytes_per_second", "eta_seconds" (null unless it runs
// at a known rate), "pass_started_us", "last_pass_us" (0: none), "error"}.
// FromJson ignores percent and eta_seconds, which follow from the rest.
ControlJson ScrubStatusToJson(const ScrubStatus& status);
Status ScrubStatusFromJson(const ControlJson& j, ScrubStatus* status);

// {"sector", "state": "remapped" | "pending", "slot": N | null}
ControlJson MappingToJson(const Mapping& m);
Status MappingFromJson(const ControlJson& j, Mapping* m);

// {"id", "device", "first", "count", "op", "times", "probability", "seed",
// "delay_ms"}; FromJson takes defaults for all but device and first (id 0,
// count 1, op both, times 0, probability 1, seed 0, delay_ms 0) and does not
// check the rule against a set (FaultRule::Validate does).
ControlJson FaultRuleToJson(const FaultRule& r);
Status FaultRuleFromJson(const ControlJson& j, FaultRule* r);

// {"time_us", "kind", "sector", "slot": N | null, "detail"}
ControlJson EventToJson(const Event& e);

// `check`: {"ok": no problem, "problems": [...]}
ControlJson CheckResultToJson(const std::vector<std::string>& problems);

// A JSON array of the forms above, e.g. ToJsonArray(rules, FaultRuleToJson).
template <typename T, typename Fn>
ControlJson ToJsonArray(const std::vector<T>& items, Fn&& to_json) {
  ControlJson a = ControlJson::array();
  for (const T& item : items) a.push_back(to_json(item));
  return a;
}
// The items of a JSON array of such forms.
template <typename T, typename Fn>
Status FromJsonArray(const ControlJson& j, Fn&& from_json, std::vector<T>* items) {
  if (!j.is_array()) return Status::InvalidArgument("an array was expected");
  items->clear();
  for (const ControlJson& e : j) {
    T item{};
    Status s = from_json(e, &item);
    if (!s.ok()) return s;
    items->push_back(std::move(item));
  }
  return Status::OK();
}

}  // namespace remapfs
