#include "store/set_control.h"

#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <optional>

#include "store/check.h"
#include "store/control.h"
#include "store/meta_store.h"
#include "store/scrub.h"

namespace remapfs {

namespace {

// The loop of SetControl::Import over one way to change a sector and one to
// list entries (live: requests to the daemon; offline: an open engine).
Status ApplyImport(const std::function<Status(SectorChange, uint64_t)>& change,
                   const std::function<Status(uint64_t, uint64_t, std::vector<Mapping>*)>& list,
                   const std::vector<SectorRun>& runs, bool remap_readable, SetControl::ImportCounts* counts,
                   const std::function<void(uint64_t)>& progress) {
  uint64_t done = 0;
  for (const SectorRun& run : runs) {
    std::vector<Mapping> entries;
    Status s = list(run.first, run.first + run.count, &entries);
    if (!s.ok()) return s;
    size_t next = 0;  // entries are in sector order
    for (uint64_t sector = run.first; sector < run.first + run.count; ++sector) {
      if (next < entries.size() && entries[next].sector == sector) {
        ++next;
        ++counts->already;
      } else if (run.pending && !remap_readable) {
        s = change(SectorChange::kMarkPending, sector);
        if (!s.ok()) return s;
        ++counts->pending;
      } else if (s = change(SectorChange::kRemap, sector); s.ok()) {
        ++counts->remapped;
      } else {
        // Unreadable: the remap made it pending. Anything else is a real failure.
        std::vector<Mapping> now;
        Status l = list(sector, sector + 1, &now);
        if (!l.ok() || now.empty() || !now[0].pending()) return s;
        ++counts->pending;
      }
      progress(++done);
    }
  }
  return Status::OK();
}

using json = ControlJson;

std::optional<std::string> GetXattr(const std::string& path, const char* name) {
  char buf[4096];
  ssize_t n = ::getxattr(path.c_str(), name, buf, sizeof(buf));
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

Status OpenDb(const std::string& db, std::unique_ptr<MetaStore>* meta) {
  return MetaStore::Open(db, /*read_only=*/true, meta);
}

// What TARGET names: the set's UUID and DB; `daemon` when a daemon has that
// very DB file open, reached on `socket`. `note`: why a daemon that the DB
// names is not used.
struct Target {
  std::string uuid;
  std::string db;
  std::string socket;
  std::unique_ptr<ControlClient> daemon;
  std::string note;
};

// The DB that `path` names, and whether it is a mount (*mounted_uuid: the
// set it serves).
Status FindDb(const std::string& path, std::string* db, std::optional<std::string>* mounted_uuid) {
  *mounted_uuid = GetXattr(path, "user.remapfs.uuid");
  if (*mounted_uuid) {
    *db = GetXattr(path, "user.remapfs.db").value_or("");
  } else {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return Status::InvalidArgument(
          path + " is a directory but not a remapfs mount: give a set's DB, or the mountpoint of a running remapfs");
    }
    *db = path;
  }
  if (::access(db->c_str(), R_OK) != 0 && errno == EACCES) {
    return Status::IOError("cannot read the DB " + *db + " (permission denied): only root and the set's owner may use it",
                           EACCES);
  }
  return Status::OK();
}

Status Resolve(const std::string& path, Target* t, std::string* warning) {
  std::optional<std::string> mounted_uuid;
  Status s = FindDb(path, &t->db, &mounted_uuid);
  if (!s.ok()) return s;
  std::unique_ptr<MetaStore> meta;
  s = OpenDb(t->db, &meta);
  if (s.IsNotFound()) return Status::NotFound(path + " is neither a remapfs DB nor a remapfs mount");
  if (!s.ok()) return s;
  t->uuid = meta->info().uuid;
  t->socket = meta->info().control_socket;
  meta.reset();
  if (mounted_uuid && *mounted_uuid != t->uuid) {
    return Status::Mismatch("the mount " + path + " is set " + *mounted_uuid + ", but its DB " + t->db +
                            " holds set " + t->uuid);
  }
  if (!t->socket.empty()) s = ControlClient::Connect(t->db, t->socket, &t->daemon);
  if (t->daemon) return Status::OK();
  if (mounted_uuid) {
    return Status::IOError("the daemon of the remapfs mount " + path + " cannot be reached: " +
                               (s.ok() ? "it does not listen on the channel its DB names (is it stopping?)" : s.message()),
                           ECONNREFUSED);
  }
  if (s.code() == Status::Code::kMismatch) {
    *warning = s.message();
  } else if (!s.ok() && !s.IsNotFound()) {
    return s;
  }
  t->note = s.ok() ? "" : s.message();
  return Status::OK();
}

// Over the control channel of the daemon that has the set open.
class LiveSetControl final : public SetControl {
 public:
  explicit LiveSetControl(Target t)
      : SetControl(std::move(t.uuid), std::move(t.db)), socket_(std::move(t.socket)), daemon_(std::move(t.daemon)) {}

  bool live() const override { return true; }
  Status GetStatus(SetStatus* status) override { return Ask({.verb = ControlVerb::kStatus}, SetStatusFromJson, status); }
  Status List(const SectorRange& range, std::vector<Mapping>* mappings) override {
    return Ask({.verb = ControlVerb::kList, .first = range.first, .end = range.end()},
               [](const json& j, std::vector<Mapping>* m) { return FromJsonArray(j, MappingFromJson, m); }, mappings);
  }
  Status ListFaultRules(std::vector<FaultRule>* rules) override {
    return Ask({.verb = ControlVerb::kFaultList},
               [](const json& j, std::vector<FaultRule>* r) { return FromJsonArray(j, FaultRuleFromJson, r); }, rules);
  }
  Status AddFaultRule(const FaultRule& rule, FaultRule* added) override {
    return Ask({.verb = ControlVerb::kFaultAdd, .rule = rule}, FaultRuleFromJson, added);
  }
  Status RemoveFaultRule(uint64_t id) override { return Do({.verb = ControlVerb::kFaultRemove, .id = id}); }
  Status ClearFaultRules() override { return Do({.verb = ControlVerb::kFaultClear}); }
  Status ChangeSector(SectorChange change, uint64_t sector) override {
    return Do({.verb = SectorChangeVerb(change), .sector = sector});
  }
  Status Flush() override { return Do({.verb = ControlVerb::kFlush}); }
  Status Import(const std::vector<SectorRun>& runs, bool remap_readable, ImportCounts* counts,
                const std::function<void(uint64_t)>& progress) override {
    return ApplyImport([this](SectorChange c, uint64_t sector) { return ChangeSector(c, sector); },
                       [this](uint64_t first, uint64_t end, std::vector<Mapping>* m) {
                         return List(SectorRange{first, end - first}, m);
                       },
                       runs, remap_readable, counts, progress);
  }
  Status Scrub(ControlVerb verb, std::optional<uint64_t> rate, ScrubStatus* status) override {
    ControlRequest r;
    r.verb = verb;
    r.rate = rate;
    return Ask(r, ScrubStatusFromJson, status);
  }
  Status Rebind(const std::string&, std::string*) override {
    return Status::InvalidArgument("set " + uuid() + " is mounted; unmount it before `remapctl rebind`");
  }

 private:
  // Sends `request`, then reads its result with from_json (a result it
  // refuses: a corrupt reply).
  template <typename T, typename FromJson>
  Status Ask(const ControlRequest& request, FromJson&& from_json, T* out) {
    json result;
    Status s = Call(request, &result);
    if (!s.ok()) return s;
    s = from_json(result, out);
    return s.ok() ? s : Status::Corruption("bad reply from the daemon: " + s.message());
  }
  Status Do(const ControlRequest& request) {
    json ignored;
    return Call(request, &ignored);
  }
  Status Call(const ControlRequest& request, json* result);

  const std::string socket_;
  std::unique_ptr<ControlClient> daemon_;  // checked by Open; serves the first request
};

// The daemon serves one request a connection: each after the first
// connects, and checks whom it reached, anew.
Status LiveSetControl::Call(const ControlRequest& request, json* result) {
  if (!daemon_) {
    Status s = ControlClient::Connect(db(), socket_, &daemon_);
    if (!s.ok()) return s;
    if (!daemon_) {
      return Status::IOError("the remapfs daemon of DB " + db() + " no longer listens on its channel (did it stop?)",
                             ECONNREFUSED);
    }
  }
  const std::unique_ptr<ControlClient> daemon = std::move(daemon_);
  return daemon->Call(request, result);
}

// On the DB, and on an engine of its own for a change.
class OfflineSetControl final : public SetControl {
 public:
  explicit OfflineSetControl(Target t) : SetControl(std::move(t.uuid), std::move(t.db)), note_(std::move(t.note)) {}

  bool live() const override { return false; }
  Status GetStatus(SetStatus* status) override;
  Status List(const SectorRange& range, std::vector<Mapping>* mappings) override;
  Status ListFaultRules(std::vector<FaultRule>* rules) override;
  Status AddFaultRule(const FaultRule& rule, FaultRule* added) override {
    return Change([&](MetaStore* meta) { return CheckFaultRule(rule, meta->info()); },
                  [&](Engine* engine) { return engine->AddFaultRule(rule, added); });
  }
  Status RemoveFaultRule(uint64_t id) override;
  Status ClearFaultRules() override {
    return Change([](MetaStore*) { return Status::OK(); },
                  [](Engine* engine) {
                    engine->ClearFaultRules();
                    return Status::OK();
                  });
  }
  Status ChangeSector(SectorChange change, uint64_t sector) override;
  Status Flush() override { return Status::OK(); }
  Status Import(const std::vector<SectorRun>& runs, bool remap_readable, ImportCounts* counts,
                const std::function<void(uint64_t)>& progress) override;
  Status Scrub(ControlVerb verb, std::optional<uint64_t> rate, ScrubStatus* status) override;
  Status Rebind(const std::string& main, std::string* identity) override;

 private:
  // Opens the set with `options`; busy_hint: what to do when another
  // process has it.
  Status OpenEngine(const SetPaths& paths, const EngineOptions& options, const std::string& busy_hint,
                    std::unique_ptr<Engine>* engine);
  // Refuses bad input with precheck(the read-only DB) before the set is
  // opened: opening writes to the DB (its clean flag). Then opens the set,
  // makes the change and closes the set in order.
  Status Change(const std::function<Status(MetaStore*)>& precheck, const std::function<Status(Engine*)>& change);

  const std::string note_;
};

Status OfflineSetControl::GetStatus(SetStatus* status) {
  std::unique_ptr<MetaStore> meta;
  Status s = OpenDb(db(), &meta);
  if (s.ok()) s = ReadHealth(meta.get(), &status->health);
  if (!s.ok()) return s;
  status->uuid = meta->info().uuid;
  status->sector_size = meta->info().sector_size;
  status->size = meta->info().main_size;
  status->place = SetPlace{meta->info().main_path, meta->info().spare_path, AbsolutePath(db()), "", 0, 0};
  ScrubState scrub;
  s = meta->LoadScrubState(&scrub);
  status->scrub = Scrubber::StatusOf(scrub, meta->info().sector_count(), meta->info().sector_size,
                                     status->health.slots_used);
  return s;
}

Status OfflineSetControl::Scrub(ControlVerb verb, std::optional<uint64_t>, ScrubStatus* status) {
  if (verb != ControlVerb::kScrubStatus) {
    return Status::InvalidArgument("no daemon has set " + uuid() +
                                   " open: a scrub runs in the daemon; mount the set, then run this on its mountpoint");
  }
  SetStatus st;
  Status s = GetStatus(&st);
  *status = st.scrub;
  return s;
}

Status OfflineSetControl::List(const SectorRange& range, std::vector<Mapping>* mappings) {
  std::unique_ptr<MetaStore> meta;
  Status s = OpenDb(db(), &meta);
  if (!s.ok()) return s;
  mappings->clear();
  return meta->LoadSectors([&](uint64_t sector, uint32_t slot) {
    if (sector >= range.first && sector < range.end()) mappings->push_back(Mapping{sector, slot});
  });
}

Status OfflineSetControl::ListFaultRules(std::vector<FaultRule>* rules) {
  std::unique_ptr<MetaStore> meta;
  Status s = OpenDb(db(), &meta);
  std::vector<InvalidFaultRule> invalid;  // not in effect; Check reports them
  return s.ok() ? meta->LoadFaultRules(rules, &invalid) : s;
}

Status OfflineSetControl::RemoveFaultRule(uint64_t id) {
  bool damaged = false;  // an invalid row: the open drops it
  return Change(
      [&](MetaStore* meta) {
        std::vector<FaultRule> rules;
        std::vector<InvalidFaultRule> invalid;
        Status s = meta->LoadFaultRules(&rules, &invalid);
        damaged = std::any_of(invalid.begin(), invalid.end(),
                              [&](const InvalidFaultRule& r) { return r.id == static_cast<int64_t>(id); });
        const bool found = std::any_of(rules.begin(), rules.end(), [&](const FaultRule& r) { return r.id == id; });
        return s.ok() && !damaged && !found ? NoFaultRule(id) : s;
      },
      [&](Engine* engine) { return damaged ? Status::OK() : engine->RemoveFaultRule(id); });
}

Status OfflineSetControl::ChangeSector(SectorChange change, uint64_t sector) {
  return Change(
      [&](MetaStore* meta) {
        Status s = CheckSectorInRange(sector, meta->info().sector_count());
        std::optional<uint32_t> entry;
        if (s.ok()) s = meta->LoadSector(sector, &entry);
        return s.ok() ? CheckSectorChange(change, sector, entry) : s;
      },
      [&](Engine* engine) { return remapfs::ChangeSector(engine, change, sector); });
}

Status OfflineSetControl::Import(const std::vector<SectorRun>& runs, bool remap_readable, ImportCounts* counts,
                                 const std::function<void(uint64_t)>& progress) {
  return Change(
      [&](MetaStore* meta) {
        for (const SectorRun& r : runs) {
          Status s = CheckSectorInRange(r.first + r.count - 1, meta->info().sector_count());
          if (!s.ok()) return s;
        }
        return Status::OK();
      },
      [&](Engine* engine) {
        return ApplyImport([engine](SectorChange c, uint64_t sector) { return remapfs::ChangeSector(engine, c, sector); },
                           [engine](uint64_t first, uint64_t end, std::vector<Mapping>* m) {
                             *m = engine->List(first, end);
                             return Status::OK();
                           },
                           runs, remap_readable, counts, progress);
      });
}

Status OfflineSetControl::Rebind(const std::string& main, std::string* identity) {
  std::unique_ptr<MetaStore> meta;
  Status s = OpenDb(db(), &meta);
  if (!s.ok()) return s;
  const SetPaths paths{main, meta->info().spare_path, db()};
  meta.reset();
  EngineOptions options;
  options.rebind_main = true;
  std::unique_ptr<Engine> engine;
  s = OpenEngine(paths, options, "unmount the set before `remapctl rebind`", &engine);
  if (s.ok()) s = engine->Close();
  if (s.ok()) s = OpenDb(db(), &meta);
  if (s.ok()) *identity = meta->info().main_identity;
  return s;
}

Status OfflineSetControl::OpenEngine(const SetPaths& paths, const EngineOptions& options, const std::string& busy_hint,
                                     std::unique_ptr<Engine>* engine) {
  Status s = Engine::Open(paths, options, engine);
  return s.code() == Status::Code::kBusy ? Status::Busy(s.message() + "; " + busy_hint) : s;
}

Status OfflineSetControl::Change(const std::function<Status(MetaStore*)>& precheck,
                                 const std::function<Status(Engine*)>& change) {
  std::unique_ptr<MetaStore> meta;
  Status s = OpenDb(db(), &meta);
  if (s.ok()) s = precheck(meta.get());
  if (!s.ok()) return s;
  const SetPaths paths{meta->info().main_path, meta->info().spare_path, db()};
  meta.reset();
  std::unique_ptr<Engine> engine;
  // The note says when a daemon has the set open with another DB (db() is a copy).
  s = OpenEngine(paths, EngineOptions{}, note_.empty() ? "give its mountpoint to change it live" : note_, &engine);
  if (!s.ok()) return s;
  s = change(engine.get());
  if (!s.ok()) return s;
  return engine->Close();
}

}  // namespace

Status SetControl::Open(const std::string& target, std::unique_ptr<SetControl>* result, std::string* warning) {
  warning->clear();
  Target t;
  Status s = Resolve(target, &t, warning);
  if (!s.ok()) return s;
  if (t.daemon) {
    result->reset(new LiveSetControl(std::move(t)));
  } else {
    result->reset(new OfflineSetControl(std::move(t)));
  }
  return Status::OK();
}

Status SetControl::Events(size_t limit, std::vector<Event>* events) {
  std::unique_ptr<MetaStore> meta;
  Status s = OpenDb(db_, &meta);
  return s.ok() ? meta->LoadEvents(limit, events) : s;
}

Status SetControl::Check(const std::string& main, const std::string& spare, std::vector<std::string>* problems) {
  std::unique_ptr<MetaStore> meta;
  Status s = OpenDb(db_, &meta);
  if (!s.ok()) return s;
  const SetPaths paths{main.empty() ? meta->info().main_path : main, spare.empty() ? meta->info().spare_path : spare,
                       db_};
  meta.reset();
  return CheckSet(Env::Default(), paths, problems);
}

}  // namespace remapfs
