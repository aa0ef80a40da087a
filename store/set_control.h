// SetControl: the operations remapctl offers on one set, whether a daemon
// has the set open or not, behind one interface with two implementations.
// Live (a daemon has that very DB file open): each call is one request over
// the daemon's control channel (control.h), and a change is durable before
// the call returns. Offline: reads come from the DB, opened read-only; a
// change first checks its input against the DB with the engine's own
// refusals (engine.h), then opens the set with an Engine of its own, makes
// the change and closes the set in order. So bad input leaves MAIN, SPARE
// and DB as they are (an open writes the DB), live or not.
//
// Events and Check read the DB and the images in both cases: the channel
// has no verb for them, and they never need the daemon.
//
// Thread-safety: one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store/changes.h"
#include "store/control_protocol.h"
#include "store/engine.h"
#include "store/fault.h"
#include "store/formats.h"
#include "store/health.h"
#include "store/remap_table.h"
#include "store/status.h"

namespace remapfs {

class SetControl {
 public:
  // Opens the set that `target` names: a set's DB, or the mountpoint (or
  // exposed file) of a running remapfs. A DB means that very file: the
  // daemon that its recorded control channel leads to is used only when it
  // has that file open (a copy of a live set's DB is used offline). Finding
  // the daemon sends it nothing (no flush): a failing daemon is reported as
  // it is, never replaced by the DB's older view. Refuses with one line a
  // directory that is no mount, a DB the caller may not read, a file that
  // is no DB, a mount whose DB holds another set, and a mount whose daemon
  // cannot be reached. *warning: a line for the user, also on success
  // (a process of another user listens on the set's channel), or empty.
  static Status Open(const std::string& target, std::unique_ptr<SetControl>* result, std::string* warning);

  virtual ~SetControl() = default;
  SetControl(const SetControl&) = delete;
  SetControl& operator=(const SetControl&) = delete;

  const std::string& uuid() const { return uuid_; }
  const std::string& db() const { return db_; }
  // Whether a daemon has the set open (the calls go to it).
  virtual bool live() const = 0;

  virtual Status GetStatus(SetStatus* status) = 0;
  // The table entries with sector in [range.first, range.end()), in order.
  virtual Status List(const SectorRange& range, std::vector<Mapping>* mappings) = 0;
  // The rules in effect (offline, a damaged row of the DB is not one; Check
  // reports it).
  virtual Status ListFaultRules(std::vector<FaultRule>* rules) = 0;
  // Adds `rule` (its id is ignored); *added: the rule with its new id.
  virtual Status AddFaultRule(const FaultRule& rule, FaultRule* added) = 0;
  virtual Status RemoveFaultRule(uint64_t id) = 0;
  virtual Status ClearFaultRules() = 0;
  // Engine::Remap, Unremap or MarkPending of one sector.
  virtual Status ChangeSector(SectorChange change, uint64_t sector) = 0;
  // Makes what the set acknowledged durable (offline: every change is
  // durable when its call returns, so nothing is left to do).
  virtual Status Flush() = 0;
  // A scrub verb (ControlVerb::kScrubStart ... kScrubStatus; rate: see
  // ControlRequest), then where the scrub is. A scrub runs in the daemon:
  // offline, only scrub-status answers (from the DB), the rest are refused.
  virtual Status Scrub(ControlVerb verb, std::optional<uint64_t> rate, ScrubStatus* status) = 0;
  // remapctl import: each sector of `runs` without an entry yet is made
  // pending, or, when its run is not pending or remap_readable is set,
  // remapped if MAIN can still be read there (it becomes pending if not).
  // Sectors with an entry are left as they are. progress(sectors looked
  // at) after each. A failure that is not MAIN's (no spare slot, the
  // store) ends it with that status; what was done stays done. Offline the
  // set is opened once for the whole import.
  struct ImportCounts {
    uint64_t pending = 0, remapped = 0, already = 0;
  };
  virtual Status Import(const std::vector<SectorRun>& runs, bool remap_readable, ImportCounts* counts,
                        const std::function<void(uint64_t)>& progress) = 0;
  // Accepts `main` as the set's new MAIN (after a deliberate move to a clone:
  // EngineOptions::rebind_main) and records its identity, *identity. Refused
  // while a daemon has the set open.
  virtual Status Rebind(const std::string& main, std::string* identity) = 0;

  // The newest `limit` events, oldest first.
  Status Events(size_t limit, std::vector<Event>* events);
  // The consistency check of `remapctl check` (CheckSet); main and spare
  // override where the DB says they are (empty: as it says). A consistent
  // set leaves *problems empty.
  Status Check(const std::string& main, const std::string& spare, std::vector<std::string>* problems);

 protected:
  SetControl(std::string uuid, std::string db) : uuid_(std::move(uuid)), db_(std::move(db)) {}

 private:
  const std::string uuid_;
  const std::string db_;
};

}  // namespace remapfs
