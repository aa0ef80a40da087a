// remapctl: create, inspect and steer remapfs sets.
//
// TARGET is the set's DB, or the mountpoint (or exposed file) of a running
// daemon. When a daemon has that very DB file open, every verb goes through
// its control channel and applies live; otherwise read verbs read the DB
// (read-only) and changing verbs open the set themselves.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "store/check.h"
#include "store/control.h"
#include "store/engine.h"
#include "store/identity.h"
#include "store/meta_store.h"
#include "store/parse.h"
#include "store/set_format.h"

namespace remapfs {
namespace {

using json = nlohmann::ordered_json;

// events --limit: no more are kept.
constexpr uint64_t kMaxEventLimit = MetaStore::kMaxEvents;

// A failure with the exit code to leave with.
struct Failure {
  std::string message;
  int code = 1;
};

[[noreturn]] void Fail(const std::string& message, int code = 1) { throw Failure{message, code}; }
void Check(const Status& s) {
  if (!s.ok()) Fail(s.message());
}

std::optional<std::string> GetXattr(const std::string& path, const char* name) {
  char buf[4096];
  ssize_t n = ::getxattr(path.c_str(), name, buf, sizeof(buf));
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

// What TARGET names: the set's UUID and DB; `daemon` when a daemon has that
// very DB file open. `note`: why a daemon that the DB names is not used.
struct Target {
  std::string uuid;
  std::string db;
  std::unique_ptr<ControlClient> daemon;
  std::string note;
};

std::unique_ptr<MetaStore> OpenDb(const std::string& db) {
  std::unique_ptr<MetaStore> meta;
  Check(MetaStore::Open(db, /*read_only=*/true, &meta));
  return meta;
}

// A DB path means that DB file: the daemon that its recorded control channel
// leads to is used only when it has that file open (a copy of a live set's
// DB is used offline). Finding the daemon sends it nothing: no flush, so a
// failing daemon is reported as such, never replaced by the DB's older view.
Target Resolve(const std::string& path) {
  Target t;
  const std::optional<std::string> mounted_uuid = GetXattr(path, "user.remapfs.uuid");
  if (mounted_uuid) {
    t.db = GetXattr(path, "user.remapfs.db").value_or("");
  } else {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      Fail(path + " is a directory but not a remapfs mount: give a set's DB, or the mountpoint of a running remapfs");
    }
    t.db = path;
  }
  if (::access(t.db.c_str(), R_OK) != 0 && errno == EACCES) {
    Fail("cannot read the DB " + t.db + " (permission denied): only root and the set's owner may use it");
  }
  std::unique_ptr<MetaStore> meta;
  Status s = MetaStore::Open(t.db, /*read_only=*/true, &meta);
  if (s.IsNotFound()) Fail(path + " is neither a remapfs DB nor a remapfs mount");
  Check(s);
  t.uuid = meta->info().uuid;
  const std::string socket_name = meta->info().control_socket;
  meta.reset();
  if (mounted_uuid && *mounted_uuid != t.uuid) {
    Fail("the mount " + path + " is set " + *mounted_uuid + ", but its DB " + t.db + " holds set " + t.uuid);
  }
  if (!socket_name.empty()) s = ControlClient::Connect(t.db, socket_name, &t.daemon);
  if (t.daemon) return t;
  if (mounted_uuid) {
    Fail("the daemon of the remapfs mount " + path + " cannot be reached: " +
         (s.ok() ? "it does not listen on the channel its DB names (is it stopping?)" : s.message()));
  }
  if (s.code() == Status::Code::kMismatch) {
    std::fprintf(stderr, "remapctl: warning: %s\n", s.message().c_str());
  } else if (!s.ok() && !s.IsNotFound()) {
    Check(s);
  }
  t.note = s.ok() ? "" : s.message();
  return t;
}

json Call(const Target& t, const json& request) {
  json result;
  Check(t.daemon->Call(request, &result));
  return result;
}

std::unique_ptr<MetaStore> OpenDb(const Target& t) { return OpenDb(t.db); }

// Runs a change on a set no daemon has open.
template <typename Fn>
void Offline(const Target& t, Fn&& fn) {
  std::unique_ptr<MetaStore> meta = OpenDb(t);
  SetPaths paths{meta->info().main_path, meta->info().spare_path, t.db};
  meta.reset();
  std::unique_ptr<Engine> engine;
  Status s = Engine::Open(paths, EngineOptions{}, &engine);
  if (s.code() == Status::Code::kBusy) {
    // The note says when a daemon has the set open with another DB (t.db is a copy).
    Fail(s.message() + "; " + (t.note.empty() ? "give its mountpoint to change it live" : t.note));
  }
  Check(s);
  Check(fn(engine.get()));
  Check(engine->Close());
}

// Refuses bad input of an offline change before the set is opened: opening
// writes to the DB (its clean flag), and bad input must leave MAIN, SPARE and
// DB as they are. fn(meta) checks against the read-only DB.
template <typename Fn>
void Precheck(const Target& t, Fn&& fn) {
  std::unique_ptr<MetaStore> meta = OpenDb(t);
  Check(fn(*meta));
}

// The refusals of Engine::Remap/Unremap/MarkPending, against the DB.
Status PrecheckSector(MetaStore& meta, SectorChange change, uint64_t sector) {
  Status s = CheckSectorInRange(sector, meta.info().main_size / meta.info().sector_size);
  if (!s.ok()) return s;
  std::optional<uint32_t> entry;
  s = meta.LoadSectors([&](uint64_t sec, uint32_t slot) {
    if (sec == sector) entry = slot;
  });
  return s.ok() ? CheckSectorChange(change, sector, entry) : s;
}

// A number option (text: CLI11's own conversions take "-1" and wrap it).
uint64_t Number(std::string_view what, const std::string& text, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  const Status s = ParseNumber(what, text, min, max, &v);
  if (!s.ok()) Fail(s.message(), 2);
  return v;
}

uint64_t ParseSector(const std::string& s) {
  auto r = ParseSectorRange(s);
  if (!r || r->count != 1) Fail("'" + s + "' is not a sector number", 2);
  return r->first;
}

// A small aligned table: the first row is the header.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

std::string Str(const json& j) { return j.is_string() ? j.get<std::string>() : j.is_null() ? "-" : j.dump(); }

void PrintStatus(const json& st) {
  std::vector<std::vector<std::string>> rows = {{"field", "value"}};
  for (const char* k : {"uuid", "state", "size", "sector_size", "remapped_sectors", "pending_sectors"}) {
    if (st.contains(k)) rows.push_back({k, Str(st[k])});
  }
  for (auto& [k, v] : st["slots"].items()) rows.push_back({"slots_" + k, Str(v)});
  rows.push_back({"was_clean", Str(st["was_clean"])});
  for (const char* k : {"sync_error", "store_error", "previous_store_error"}) {
    if (st.contains(k) && !st[k].get<std::string>().empty()) rows.push_back({k, Str(st[k])});
  }
  for (auto& [k, v] : st["counters"].items()) rows.push_back({k, Str(v)});
  PrintTable(rows);
}

json OfflineStatus(const Target& t) {
  auto meta = OpenDb(t);
  Health h;
  Check(ReadHealth(meta.get(), &h));
  json j = HealthToJson(h);
  j["uuid"] = meta->info().uuid;
  j["sector_size"] = meta->info().sector_size;
  j["size"] = meta->info().main_size;
  return j;
}

json OfflineList(const Target& t, const SectorRange& range) {
  auto meta = OpenDb(t);
  json arr = json::array();
  Check(meta->LoadSectors([&](uint64_t sector, uint32_t slot) {
    if (sector >= range.first && sector < range.end()) arr.push_back(MappingToJson(Mapping{sector, slot}));
  }));
  return arr;
}

json OfflineFaults(const Target& t) {
  auto meta = OpenDb(t);
  std::vector<FaultRule> rules;
  std::vector<InvalidFaultRule> invalid;  // not in effect; `check` reports them
  Check(meta->LoadFaultRules(&rules, &invalid));
  json arr = json::array();
  for (const FaultRule& r : rules) arr.push_back(FaultRuleToJson(r));
  return arr;
}

int Run(int argc, char** argv) {
  CLI::App app{"remapctl: create, inspect and steer remapfs sets.\n"
               "TARGET is a set's DB, or the mountpoint (or exposed file) of a running remapfs."};
  app.require_subcommand(1);
  bool as_json = false;
  std::string target_path;
  auto add_target = [&](CLI::App* cmd) { cmd->add_option("TARGET", target_path, "DB, mountpoint or exposed file")->required(); };
  auto add_json = [&](CLI::App* cmd) { cmd->add_flag("--json", as_json, "machine-readable output"); };

  // create
  std::string main_path, spare_path, db_path, spare_size_text, sector_size_text = "4096";
  auto* create = app.add_subcommand("create", "make a new set from MAIN and SPARE (never overwrites one)");
  create->add_option("MAIN", main_path, "the image or disk with bad sectors")->required();
  create->add_option("SPARE", spare_path, "the image or disk that holds the spare slots")->required();
  create->add_option("--db", db_path, "the set's DB (default: SPARE.db)");
  create->add_option("--sector-size", sector_size_text, "remap unit, 512 or 4096 (default 4096)");
  create->add_option("--spare-size", spare_size_text, "create SPARE as a file of this size (e.g. 64M) if it does not exist");

  auto* status = app.add_subcommand("status", "health, slots and counters");
  add_target(status);
  add_json(status);

  std::string new_main;
  auto* rebind = app.add_subcommand(
      "rebind", "accept a new MAIN after a deliberate move (MAIN cloned to another disk or file): records its identity");
  rebind->add_option("DB", target_path, "the set's DB (the set must not be mounted)")->required();
  rebind->add_option("--main", new_main, "the new MAIN, of the set's size")->required();

  std::string sectors_text;
  auto* list = app.add_subcommand("list", "remapped and pending sectors");
  add_target(list);
  add_json(list);
  auto* list_sectors = list->add_option("--sectors", sectors_text, "only these sectors: N, A-B or A+COUNT");

  std::string main_override, spare_override;
  auto* check = app.add_subcommand("check", "consistency of MAIN's identity, spare header, DB, table and fault rules (exit 1 on a problem)");
  add_target(check);
  add_json(check);
  check->add_option("--main", main_override, "MAIN's path, if it moved since the set was last opened");
  check->add_option("--spare", spare_override, "SPARE's path, if it moved since the set was last opened");

  std::string event_limit_text = "50";
  auto* events = app.add_subcommand("events", "the newest events (remaps, pending sectors, bad slots)");
  add_target(events);
  add_json(events);
  events->add_option("--limit", event_limit_text, "how many, 1 to " + std::to_string(kMaxEventLimit) + " (default 50)");

  auto* fault = app.add_subcommand("fault", "fault-injection rules");
  fault->require_subcommand(1);
  std::string device = "main", op = "both", times_text, seed_text = "0", probability_text = "1", delay_ms_text = "0",
              rule_id_text;
  auto* fault_add = fault->add_subcommand("add", "make sectors of MAIN or SPARE (slots) fail or be slow");
  add_target(fault_add);
  fault_add->add_option("--device", device, "main or spare (default main)");
  fault_add->add_option("--sectors", sectors_text, "N, A-B or A+COUNT (slots for spare)")->required();
  fault_add->add_option("--op", op, "read, write or both (default both)");
  auto* times_opt = fault_add->add_option("--times", times_text, "hit only the first N (at least 1) matching requests (default: all)");
  fault_add->add_option("--probability", probability_text, "hit a matching request with this chance (0-1]");
  fault_add->add_option("--seed", seed_text, "seed for --probability (reproducible), 0 to 2^64-1");
  fault_add->add_option("--delay-ms", delay_ms_text,
                        "delay hit requests by this many ms (at most 60000) instead of failing them");
  auto* fault_list = fault->add_subcommand("list", "the rules");
  add_target(fault_list);
  add_json(fault_list);
  auto* fault_remove = fault->add_subcommand("remove", "remove one rule");
  add_target(fault_remove);
  fault_remove->add_option("ID", rule_id_text, "the rule's id (see fault list)")->required();
  auto* fault_clear = fault->add_subcommand("clear", "remove every rule");
  add_target(fault_clear);

  std::string sector_text;
  auto sector_cmd = [&](const char* name, const char* help) {
    auto* cmd = app.add_subcommand(name, help);
    add_target(cmd);
    cmd->add_option("SECTOR", sector_text, "the sector")->required();
    return cmd;
  };
  auto* remap = sector_cmd("remap", "copy a readable sector to a spare slot and serve it from there");
  auto* unremap = sector_cmd("unremap", "serve a sector from MAIN again (copied back and verified)");
  sector_cmd("mark-pending", "declare a sector unreadable until it is written");

  // An unknown verb: say which (CLI11 would only say that one is required).
  if (argc > 1 && argv[1][0] != '-') {
    try {
      app.get_subcommand(argv[1]);
    } catch (const CLI::OptionNotFound&) {
      std::fprintf(stderr, "remapctl: unknown verb '%s' (see remapctl --help)\n", argv[1]);
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    std::fprintf(stderr, "remapctl: %s (see remapctl --help)\n", what.c_str());
    return 2;
  }

  spdlog::set_level(spdlog::level::warn);  // an offline engine's info lines are noise here
  auto print = [&](const json& j, auto&& human) {
    if (as_json) {
      std::cout << j.dump(2) << "\n";
    } else {
      human(j);
    }
  };

  if (*create) {
    CreateOptions co;
    if (sector_size_text != "512" && sector_size_text != "4096") {
      Fail("--sector-size '" + sector_size_text + "' is not 512 or 4096", 2);
    }
    const uint32_t sector_size = sector_size_text == "512" ? 512 : 4096;
    co.sector_size = sector_size;
    if (!spare_size_text.empty()) {
      auto size = ParseByteSize(spare_size_text);
      if (!size) Fail("--spare-size '" + spare_size_text + "' is not a size (e.g. 64M)", 2);
      co.spare_size = *size;
    }
    SetPaths paths{AbsolutePath(main_path), AbsolutePath(spare_path), db_path};
    if (paths.db.empty()) {
      paths.db = DefaultDbPath(paths.spare);
      if (paths.db.empty()) Fail("SPARE " + paths.spare + " is a block device: give --db PATH", 2);
    }
    paths.db = AbsolutePath(paths.db);
    Check(CreateSet(Env::Default(), paths, co));
    auto meta = OpenDb(paths.db);
    std::string mount_opts = "spare=" + EscapeMountOption(paths.spare) + ",db=" + EscapeMountOption(paths.db);
    if (mount_opts.find('\\') != std::string::npos) mount_opts = "'" + mount_opts + "'";  // keep \, from the shell
    std::cout << "created set " << meta->info().uuid << ": " << meta->info().main_size / sector_size
              << " sectors of " << sector_size << " bytes, " << meta->info().slot_count << " spare slots\n"
              << "DB: " << paths.db << "\n"
              << "MAIN's identity: " << meta->info().main_identity << "\n"
              << "mount it: remapfs " << paths.main << " MOUNTPOINT -o " << mount_opts << "\n";
    if (meta->info().main_identity == kSizeOnlyIdentity) {
      std::cerr << "remapctl: warning: MAIN " << paths.main
                << " has no stable identifier (no serial, WWN or by-id name): only its size tells it from "
                   "another disk\n";
    }
    return 0;
  }

  // Every number is checked before TARGET is looked at.
  SectorRange range{0, UINT64_MAX};
  if (list_sectors->count() > 0 || *fault_add) {  // given: "" is no range, not "all"
    auto r = ParseSectorRange(sectors_text);
    if (!r) Fail("--sectors '" + sectors_text + "' is not N, A-B or A+COUNT", 2);
    range = *r;
  }
  FaultRule parsed;
  if (*fault_add) {
    auto dev = ParseDevice(device);
    auto fop = ParseFaultOp(op);
    if (!dev) Fail("--device '" + device + "' is not main or spare", 2);
    if (!fop) Fail("--op '" + op + "' is not read, write or both", 2);
    parsed.device = *dev;
    parsed.op = *fop;
    parsed.sectors = range;
    // 0 would be the JSON form of "always", which leaving --times out says.
    if (times_text == "0") Fail("--times 0 is not a count: leave --times out for a rule that always hits", 2);
    if (times_opt->count() > 0) parsed.times = Number("--times", times_text, 1, FaultRule::kMaxTimes);
    const Status p = ParseProbability("--probability", probability_text, &parsed.probability);
    if (!p.ok()) Fail(p.message(), 2);
    parsed.seed = Number("--seed", seed_text, 0, UINT64_MAX);
    parsed.delay_ms = static_cast<uint32_t>(Number("--delay-ms", delay_ms_text, 0, FaultRule::kMaxDelayMs));
  }
  const size_t event_limit = Number("--limit", event_limit_text, 1, kMaxEventLimit);
  const uint64_t rule_id = *fault_remove ? Number("ID", rule_id_text, 1, INT64_MAX) : 0;

  Target t = Resolve(target_path);
  if (*rebind) {
    if (t.daemon) Fail("set " + t.uuid + " is mounted; unmount it before `remapctl rebind`");
    SetPaths paths{AbsolutePath(new_main), OpenDb(t)->info().spare_path, t.db};
    EngineOptions eo;
    eo.rebind_main = true;
    std::unique_ptr<Engine> engine;
    Status s = Engine::Open(paths, eo, &engine);
    if (s.code() == Status::Code::kBusy) Fail(s.message() + "; unmount the set before `remapctl rebind`");
    Check(s);
    Check(engine->Close());
    std::cout << "set " << t.uuid << " now has MAIN " << paths.main << " (identity: "
              << OpenDb(t)->info().main_identity << ")\n";
    return 0;
  }

  if (*status) {
    print(t.daemon ? Call(t, {{"verb", "status"}}) : OfflineStatus(t), PrintStatus);
  } else if (*list) {
    json arr = t.daemon ? Call(t, {{"verb", "list"}, {"first", range.first}, {"end", range.end()}})
                        : OfflineList(t, range);
    print(arr, [](const json& a) {
      std::vector<std::vector<std::string>> rows = {{"sector", "state", "slot"}};
      for (const auto& m : a) rows.push_back({Str(m["sector"]), Str(m["state"]), Str(m["slot"])});
      PrintTable(rows);
    });
  } else if (*check) {
    auto meta = OpenDb(t);
    SetPaths paths{main_override.empty() ? meta->info().main_path : main_override,
                   spare_override.empty() ? meta->info().spare_path : spare_override, t.db};
    meta.reset();
    std::vector<std::string> problems;
    Check(CheckSet(Env::Default(), paths, &problems));
    print(json{{"ok", problems.empty()}, {"problems", problems}}, [&](const json&) {
      for (const auto& p : problems) std::cout << "problem: " << p << "\n";
      if (problems.empty()) std::cout << "ok: spare header, DB and table are consistent\n";
    });
    return problems.empty() ? 0 : 1;
  } else if (*events) {
    auto meta = OpenDb(t);
    std::vector<Event> evs;
    Check(meta->LoadEvents(event_limit, &evs));
    json arr = json::array();
    for (const Event& e : evs) {
      arr.push_back({{"time_us", e.time_us}, {"kind", EventKindName(e.kind)}, {"sector", e.sector},
                     {"slot", e.slot < 0 ? json(nullptr) : json(e.slot)}, {"detail", e.detail}});
    }
    print(arr, [](const json& a) {
      std::vector<std::vector<std::string>> rows = {{"time", "event", "sector", "slot", "detail"}};
      for (const auto& e : a) {
        const time_t secs = static_cast<time_t>(e["time_us"].get<int64_t>() / 1000000);
        char when[32];
        std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", std::localtime(&secs));
        rows.push_back({when, Str(e["kind"]), Str(e["sector"]), Str(e["slot"]), Str(e["detail"])});
      }
      PrintTable(rows);
    });
  } else if (*fault_add) {
    FaultRule added;
    if (t.daemon) {
      Check(FaultRuleFromJson(Call(t, {{"verb", "fault-add"}, {"rule", FaultRuleToJson(parsed)}}), &added));
    } else {
      Precheck(t, [&](MetaStore& m) {
        return parsed.Validate(parsed.device == Device::kMain ? m.info().main_size / m.info().sector_size
                                                              : m.info().slot_count);
      });
      Offline(t, [&](Engine* e) { return e->AddFaultRule(parsed, &added); });
    }
    std::cout << "added fault rule " << added.id << ": " << added.ToString() << "\n";
  } else if (*fault_list) {
    print(t.daemon ? Call(t, {{"verb", "fault-list"}}) : OfflineFaults(t), [](const json& a) {
      std::vector<std::vector<std::string>> rows = {{"id", "device", "sectors", "op", "times", "probability", "seed", "delay_ms"}};
      for (const auto& r : a) {
        const uint64_t first = r["first"], count = r["count"];
        rows.push_back({Str(r["id"]), Str(r["device"]), std::to_string(first) + "-" + std::to_string(first + count - 1),
                        Str(r["op"]), r["times"] == 0 ? "always" : Str(r["times"]), Str(r["probability"]),
                        Str(r["seed"]), Str(r["delay_ms"])});
      }
      PrintTable(rows);
    });
  } else if (*fault_remove) {
    if (t.daemon) {
      Call(t, {{"verb", "fault-remove"}, {"id", rule_id}});
    } else {
      bool damaged = false;  // an invalid rule: the open drops it
      Precheck(t, [&](MetaStore& m) {
        std::vector<FaultRule> rules;
        std::vector<InvalidFaultRule> invalid;
        Status s = m.LoadFaultRules(&rules, &invalid);
        damaged = std::any_of(invalid.begin(), invalid.end(),
                              [&](const InvalidFaultRule& r) { return r.id == static_cast<int64_t>(rule_id); });
        if (s.ok() && !damaged &&
            std::none_of(rules.begin(), rules.end(), [&](const FaultRule& r) { return r.id == rule_id; })) {
          s = Status::NotFound("no fault rule with id " + std::to_string(rule_id));
        }
        return s;
      });
      Offline(t, [&](Engine* e) { return damaged ? Status::OK() : e->RemoveFaultRule(rule_id); });
    }
    std::cout << "removed fault rule " << rule_id << "\n";
  } else if (*fault_clear) {
    if (t.daemon) {
      Call(t, {{"verb", "fault-clear"}});
    } else {
      Offline(t, [&](Engine* e) {
        e->ClearFaultRules();
        return Status::OK();
      });
    }
    std::cout << "cleared every fault rule\n";
  } else {
    const uint64_t sector = ParseSector(sector_text);
    const std::string verb = *remap ? "remap" : *unremap ? "unremap" : "mark-pending";
    if (t.daemon) {
      Call(t, {{"verb", verb}, {"sector", sector}});
    } else {
      const SectorChange change = *remap     ? SectorChange::kRemap
                                  : *unremap ? SectorChange::kUnremap
                                             : SectorChange::kMarkPending;
      Precheck(t, [&](MetaStore& m) { return PrecheckSector(m, change, sector); });
      Offline(t, [&](Engine* e) {
        return *remap ? e->Remap(sector) : *unremap ? e->Unremap(sector) : e->MarkPending(sector);
      });
    }
    std::cout << verb << ": sector " << sector << " done\n";
  }
  return 0;
}

}  // namespace
}  // namespace remapfs

int main(int argc, char** argv) {
  try {
    return remapfs::Run(argc, argv);
  } catch (const remapfs::Failure& f) {
    std::fprintf(stderr, "remapctl: %s\n", f.message.c_str());
    return f.code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "remapctl: %s\n", e.what());
    return 1;
  }
}
