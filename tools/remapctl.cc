// remapctl: create, inspect and steer remapfs sets. Each verb parses its
// options, makes one call of SetControl (store/set_control.h) and prints the
// result (tools/print.h).
//
// TARGET is the set's DB, or the mountpoint (or exposed file) of a running
// daemon. When a daemon has that very DB file open, every verb goes through
// its control channel and applies live; otherwise read verbs read the DB
// (read-only) and changing verbs open the set themselves.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "store/control_protocol.h"
#include "store/disk_map.h"
#include "store/formats.h"
#include "store/identity.h"
#include "store/meta_store.h"
#include "store/metrics.h"
#include "store/parse.h"
#include "store/set_control.h"
#include "store/set_format.h"
#include "tools/print.h"

namespace remapfs {
namespace {

using json = ControlJson;

// events --limit: no more are kept.
constexpr uint64_t kMaxEventLimit = MetaStore::kMaxEvents;

// A failure with the exit code to leave with (main reports it).
struct Failure {
  std::string message;
  int code = 1;
};

[[noreturn]] void Fail(const std::string& message, int code = 1) { throw Failure{message, code}; }
void Check(const Status& s) {
  if (!s.ok()) Fail(s.message());
}

// The command line: every verb's options; each verb reads its own.
struct Args {
  std::string target;
  bool json = false;
  std::string main, spare, db, spare_size, sector_size = "4096";  // create
  std::string new_main;                                            // rebind
  std::string sectors;                                             // list, fault add
  CLI::Option* list_sectors = nullptr;
  std::string main_override, spare_override;  // check
  std::string limit = "50";                   // events
  std::string device = "main", op = "both", times, seed = "0", probability = "1", delay_ms = "0";  // fault add
  CLI::Option* times_given = nullptr;
  std::string rule_id;  // fault remove
  std::string sector;   // remap, unremap, mark-pending
  std::string rate;     // scrub start, resume
  std::vector<CLI::Option*> rate_options;  // --rate of each verb that has one
  bool wait = false;    // scrub start, resume, status
  bool check = false;   // status --check
  std::string format, block_size;       // export, import
  std::vector<CLI::Option*> block_size_options;  // --block-size of export and import
  std::string file, statuses;           // import
  std::vector<CLI::Option*> statuses_options;  // --statuses of import and fault import
  CLI::Option* fault_import_op = nullptr;
  bool remap_readable = false, dry_run = false;
  std::string map_width = "64", map_rows = "16", svg;  // map
};

// The whole of a list file import reads.
std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) Fail("cannot read " + path + ": " + std::strerror(errno));
  return ss.str();
}

// Whether the option was given to the verb that runs (each verb has its own).
bool Given(const std::vector<CLI::Option*>& options) {
  return std::any_of(options.begin(), options.end(), [](CLI::Option* o) { return o->count() > 0; });
}

// A number option (text: CLI11's own conversions take "-1" and wrap it).
uint64_t Number(std::string_view what, const std::string& text, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  const Status s = ParseNumber(what, text, min, max, &v);
  if (!s.ok()) Fail(s.message(), 2);
  return v;
}

// --format of export and import, checked.
ListFormat TakeFormat(const Args& a) {
  const std::optional<ListFormat> format = ParseListFormat(a.format);
  if (!format) Fail("--format '" + a.format + "' is not badblocks, ddrescue, md or json", 2);
  return *format;
}

// --block-size of export and import, checked (0: not given).
uint64_t TakeBlockSize(const Args& a, ListFormat format) {
  if (!Given(a.block_size_options)) return 0;
  if (format != ListFormat::kBadblocks) Fail("--block-size is for --format badblocks", 2);
  const uint64_t block_size = Number("--block-size", a.block_size, 512, 1 << 20);
  const Status s = CheckBlockSize(block_size);
  if (!s.ok()) Fail(s.message(), 2);
  return block_size;
}

// --statuses of import and fault import: its help, and the option checked.
constexpr const char* kStatusesHelp =
    "the statuses of bad areas, of - (bad sector), * (non-trimmed) and / (non-scraped) (default -)";

void TakeStatuses(const Args& a, ImportOptions* io) {
  if (!Given(a.statuses_options)) return;
  if (a.statuses.empty() || a.statuses.find_first_not_of("-*/") != std::string::npos) {
    Fail("--statuses '" + a.statuses + "' is not made of -, * and /", 2);
  }
  io->ddrescue_statuses = a.statuses;
}

// The sectors the list file a.file names for `set`, in `format`; a file
// that cannot be read or parsed ends remapctl with its one line.
std::vector<SectorRun> ReadList(const Args& a, SetControl* set, ListFormat format, ImportOptions io) {
  const std::string text = ReadFile(a.file);
  SetStatus status;
  Check(set->GetStatus(&status));
  io.sector_size = status.sector_size;
  io.size = status.size;
  std::vector<SectorRun> runs;
  const Status parsed = ParseList(format, text, io, &runs);
  if (!parsed.ok()) Fail(a.file + ": " + parsed.message());
  return runs;
}


uint64_t ParseSector(const std::string& s) {
  auto r = ParseSectorRange(s);
  if (!r || r->count != 1) Fail("'" + s + "' is not a sector number", 2);
  return r->first;
}

// --sectors, when given: "" is no range, not "all".
SectorRange Sectors(const std::string& text) {
  auto r = ParseSectorRange(text);
  if (!r) Fail("--sectors '" + text + "' is not N, A-B or A+COUNT", 2);
  return *r;
}

FaultRule ParseFaultRule(const Args& a) {
  FaultRule rule;
  rule.sectors = Sectors(a.sectors);
  auto device = ParseDevice(a.device);
  auto op = ParseFaultOp(a.op);
  if (!device) Fail("--device '" + a.device + "' is not main or spare", 2);
  if (!op) Fail("--op '" + a.op + "' is not read, write or both", 2);
  rule.device = *device;
  rule.op = *op;
  // 0 would be the JSON form of "always", which leaving --times out says.
  if (a.times == "0") Fail("--times 0 is not a count: leave --times out for a rule that always hits", 2);
  if (a.times_given->count() > 0) rule.times = Number("--times", a.times, 1, FaultRule::kMaxTimes);
  const Status p = ParseProbability("--probability", a.probability, &rule.probability);
  if (!p.ok()) Fail(p.message(), 2);
  rule.seed = Number("--seed", a.seed, 0, UINT64_MAX);
  rule.delay_ms = static_cast<uint32_t>(Number("--delay-ms", a.delay_ms, 0, FaultRule::kMaxDelayMs));
  return rule;
}

// The set TARGET names, live or offline.
std::unique_ptr<SetControl> OpenSet(const Args& a) {
  std::unique_ptr<SetControl> set;
  std::string warning;
  const Status s = SetControl::Open(a.target, &set, &warning);
  if (!warning.empty()) std::fprintf(stderr, "remapctl: warning: %s\n", warning.c_str());
  Check(s);
  return set;
}

void Print(const Args& a, const json& j, void (*human)(const json&)) {
  if (a.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    human(j);
  }
}

// --- the verbs: each returns the exit code ----------------------------------

int RunCreate(const Args& a) {
  if (a.sector_size != "512" && a.sector_size != "4096") {
    Fail("--sector-size '" + a.sector_size + "' is not 512 or 4096", 2);
  }
  CreateOptions co;
  co.sector_size = a.sector_size == "512" ? 512 : 4096;
  if (!a.spare_size.empty()) {
    co.spare_size = ParseByteSize(a.spare_size);
    if (!co.spare_size) Fail("--spare-size '" + a.spare_size + "' is not a size (e.g. 64M)", 2);
  }
  SetPaths paths{AbsolutePath(a.main), AbsolutePath(a.spare), a.db};
  if (paths.db.empty()) {
    paths.db = DefaultDbPath(paths.spare);
    if (paths.db.empty()) Fail("SPARE " + paths.spare + " is a block device: give --db PATH", 2);
  }
  paths.db = AbsolutePath(paths.db);
  Check(CreateSet(Env::Default(), paths, co));
  std::unique_ptr<MetaStore> meta;
  Check(MetaStore::Open(paths.db, /*read_only=*/true, &meta));
  const SetInfo& info = meta->info();
  std::string mount_opts = "spare=" + EscapeMountOption(paths.spare) + ",db=" + EscapeMountOption(paths.db);
  if (mount_opts.find('\\') != std::string::npos) mount_opts = "'" + mount_opts + "'";  // keep \, from the shell
  std::cout << "created set " << info.uuid << ": " << info.sector_count() << " sectors of " << co.sector_size
            << " bytes, " << info.slot_count << " spare slots\n"
            << "DB: " << paths.db << "\n"
            << "MAIN's identity: " << info.main_identity << "\n"
            << "mount it: remapfs " << paths.main << " MOUNTPOINT -o " << mount_opts << "\n";
  if (info.main_identity == kSizeOnlyIdentity) {
    std::cerr << "remapctl: warning: MAIN " << paths.main
              << " has no stable identifier (no serial, WWN or by-id name): only its size tells it from "
                 "another disk\n";
  }
  return 0;
}

int RunRebind(const Args& a) {
  const std::unique_ptr<SetControl> set = OpenSet(a);
  const std::string main = AbsolutePath(a.new_main);
  std::string identity;
  Check(set->Rebind(main, &identity));
  std::cout << "set " << set->uuid() << " now has MAIN " << main << " (identity: " << identity << ")\n";
  return 0;
}

// health and status --check: the conditions that hold, as HealthBits.
json HealthCheckJson(const SetStatus& st) {
  const Health& h = st.health;
  const int bits = HealthBits(h);
  json conditions = json::array();
  for (const auto& [bit, name] : HealthBitNames()) {
    if (bits & bit) conditions.push_back(name);
  }
  return json{{"uuid", st.uuid},
              {"state", h.State()},
              {"conditions", conditions},
              {"exit_status", bits},
              {"remapped_sectors", h.remapped_sectors},
              {"pending_sectors", h.pending_sectors},
              {"slots_free", h.slots_free},
              {"slots_total", h.slots_total},
              {"slots_bad", h.slots_bad},
              {"was_clean", h.was_clean}};
}

// One line of key=value pairs, for people and for scripts alike.
void PrintHealthLine(const json& j) {
  std::string conditions;
  for (const auto& c : j["conditions"]) conditions += (conditions.empty() ? "" : ",") + c.get<std::string>();
  std::cout << fmt::format("state={} remapped_sectors={} pending_sectors={} slots_free={} slots_total={} slots_bad={} "
                           "was_clean={} conditions={}\n",
                           j["state"].get<std::string>(), j["remapped_sectors"].get<uint64_t>(),
                           j["pending_sectors"].get<uint64_t>(), j["slots_free"].get<uint64_t>(),
                           j["slots_total"].get<uint64_t>(), j["slots_bad"].get<uint64_t>(),
                           j["was_clean"].get<bool>(), conditions.empty() ? "none" : conditions);
}

int RunStatus(const Args& a) {
  SetStatus status;
  Check(OpenSet(a)->GetStatus(&status));
  Print(a, SetStatusToJson(status), PrintStatus);
  return a.check ? HealthBits(status.health) : 0;
}

int RunHealth(const Args& a) {
  SetStatus status;
  Check(OpenSet(a)->GetStatus(&status));
  Print(a, HealthCheckJson(status), PrintHealthLine);
  return HealthBits(status.health);
}

int RunMetrics(const Args& a) {
  SetStatus status;
  Check(OpenSet(a)->GetStatus(&status));
  std::cout << MetricsText(status);
  return 0;
}

int RunExport(const Args& a) {
  const ListFormat format = TakeFormat(a);
  ExportOptions eo;
  eo.block_size = TakeBlockSize(a, format);
  const std::unique_ptr<SetControl> set = OpenSet(a);
  SetStatus status;
  Check(set->GetStatus(&status));
  std::vector<Mapping> mappings;
  Check(set->List(SectorRange{0, UINT64_MAX}, &mappings));
  eo.sector_size = status.sector_size;
  eo.size = status.size;
  eo.uuid = status.uuid;
  std::cout << ExportList(format, mappings, eo);
  return 0;
}

// import's progress: a bar with rate and ETA on a terminal, a plain line
// every 5 s otherwise.
class ImportProgress {
 public:
  explicit ImportProgress(uint64_t total) : total_(total), tty_(::isatty(STDOUT_FILENO)) {}
  void Update(uint64_t done) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < (tty_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000)) && done != total_) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    const std::string eta = rate > 0 ? Duration(static_cast<double>(total_ - done) / rate) : "-";
    const double fraction = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1;
    if (tty_) {
      std::cout << fmt::format("\r{} {:5.1f}%  {}/{} sectors  {:.0f}/s  ETA {:<8}", Bar(fraction), fraction * 100,
                               done, total_, rate, eta)
                << std::flush;
    } else {
      std::cout << fmt::format("import: {}/{} sectors ({:.1f}%), {:.0f}/s, ETA {}\n", done, total_, fraction * 100,
                               rate, eta)
                << std::flush;
    }
  }
  void Finish() {
    if (tty_) std::cout << "\n";
  }

 private:
  const uint64_t total_;
  const bool tty_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_ = start_;
};

int RunImport(const Args& a) {
  const ListFormat format = TakeFormat(a);
  ImportOptions io;
  io.block_size = TakeBlockSize(a, format);
  if (Given(a.statuses_options) && format != ListFormat::kDdrescue) Fail("--statuses is for --format ddrescue", 2);
  TakeStatuses(a, &io);
  const std::unique_ptr<SetControl> set = OpenSet(a);
  const std::vector<SectorRun> runs = ReadList(a, set.get(), format, io);
  uint64_t total = 0, to_remap = 0;
  for (const SectorRun& r : runs) {
    total += r.count;
    if (!r.pending || a.remap_readable) to_remap += r.count;
  }
  if (a.dry_run) {
    uint64_t already = 0;
    for (const SectorRun& r : runs) {
      std::vector<Mapping> entries;
      Check(set->List(SectorRange{r.first, r.count}, &entries));
      already += entries.size();
      if (!r.pending || a.remap_readable) to_remap -= entries.size();
    }
    std::cout << fmt::format("dry run: {} sectors listed; {} to make pending, {} to remap where MAIN can still be read "
                             "(pending where not), {} already remapped or pending; nothing changed\n",
                             total, total - already - to_remap, to_remap, already);
    return 0;
  }
  ImportProgress progress(total);
  spdlog::set_level(spdlog::level::err);  // an offline engine's line per sector: the summary below says it
  SetControl::ImportCounts counts;
  const Status s = set->Import(runs, a.remap_readable, &counts, [&](uint64_t done) { progress.Update(done); });
  progress.Finish();
  std::cout << fmt::format("import: {} made pending, {} remapped, {} already remapped or pending\n", counts.pending,
                           counts.remapped, counts.already);
  Check(s);
  return 0;
}

int RunMap(const Args& a) {
  const size_t width = Number("--width", a.map_width, 8, 512);
  const size_t rows = Number("--rows", a.map_rows, 1, 4096);
  const std::unique_ptr<SetControl> set = OpenSet(a);
  SetStatus status;
  Check(set->GetStatus(&status));
  std::vector<Mapping> mappings;
  Check(set->List(SectorRange{0, UINT64_MAX}, &mappings));
  std::vector<FaultRule> rules;
  Check(set->ListFaultRules(&rules));
  std::optional<uint64_t> scrub;
  if (status.scrub.state.run != ScrubState::Run::kIdle && !status.scrub.in_spare) scrub = status.scrub.state.position;
  const DiskMap map = BuildDiskMap(status.size / status.sector_size, status.sector_size, width * rows, mappings,
                                   rules, scrub);
  if (a.svg.empty()) {
    const char* term = std::getenv("TERM");
    const bool colour = ::isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR") && !(term && std::string(term) == "dumb");
    std::cout << DiskMapText(map, width, colour);
    return 0;
  }
  std::ofstream out(a.svg, std::ios::binary | std::ios::trunc);
  out << DiskMapSvg(map, width, "remapfs set " + status.uuid + " (" + status.place.main + ")");
  out.close();
  if (!out) Fail("cannot write " + a.svg + ": " + std::strerror(errno));
  std::cout << "wrote " << a.svg << "\n";
  return 0;
}

int RunFlush(const Args& a) {
  const std::unique_ptr<SetControl> set = OpenSet(a);
  Check(set->Flush());
  std::cout << (set->live() ? "flushed: every write the daemon acknowledged is durable\n"
                            : "nothing to flush: no daemon has the set open (offline changes are durable at once)\n");
  return 0;
}

int RunList(const Args& a) {
  const SectorRange range = a.list_sectors->count() > 0 ? Sectors(a.sectors) : SectorRange{0, UINT64_MAX};
  std::vector<Mapping> mappings;
  Check(OpenSet(a)->List(range, &mappings));
  Print(a, ToJsonArray(mappings, MappingToJson), PrintMappings);
  return 0;
}

int RunCheck(const Args& a) {
  std::vector<std::string> problems;
  Check(OpenSet(a)->Check(a.main_override, a.spare_override, &problems));
  Print(a, CheckResultToJson(problems), PrintCheck);
  return problems.empty() ? 0 : 1;
}

int RunEvents(const Args& a) {
  const size_t limit = Number("--limit", a.limit, 1, kMaxEventLimit);
  std::vector<Event> events;
  Check(OpenSet(a)->Events(limit, &events));
  Print(a, ToJsonArray(events, EventToJson), PrintEvents);
  return 0;
}

int RunFaultAdd(const Args& a) {
  const FaultRule rule = ParseFaultRule(a);
  FaultRule added;
  Check(OpenSet(a)->AddFaultRule(rule, &added));
  std::cout << "added fault rule " << added.id << ": " << added.ToString() << "\n";
  return 0;
}

// fault import: a read (or --op) rule on MAIN for each bad area of a
// ddrescue mapfile, so that a real disk's failure can be rehearsed.
int RunFaultImport(const Args& a) {
  const std::string op_name = a.fault_import_op->count() > 0 ? a.op : "read";
  auto op = ParseFaultOp(op_name);
  if (!op) Fail("--op '" + op_name + "' is not read, write or both", 2);
  ImportOptions io;
  TakeStatuses(a, &io);
  const std::unique_ptr<SetControl> set = OpenSet(a);
  const std::vector<SectorRun> runs = ReadList(a, set.get(), ListFormat::kDdrescue, io);
  uint64_t sectors = 0;
  for (const SectorRun& r : runs) {
    FaultRule rule, added;
    rule.device = Device::kMain;
    rule.op = *op;
    rule.sectors = {r.first, r.count};
    Check(set->AddFaultRule(rule, &added));
    sectors += r.count;
  }
  std::cout << "added " << runs.size() << " fault rule(s) over " << sectors << " sector(s) of MAIN\n";
  return 0;
}

int RunFaultList(const Args& a) {
  std::vector<FaultRule> rules;
  Check(OpenSet(a)->ListFaultRules(&rules));
  Print(a, ToJsonArray(rules, FaultRuleToJson), PrintFaultRules);
  return 0;
}

int RunFaultRemove(const Args& a) {
  const uint64_t id = Number("ID", a.rule_id, 1, INT64_MAX);
  Check(OpenSet(a)->RemoveFaultRule(id));
  std::cout << "removed fault rule " << id << "\n";
  return 0;
}

int RunFaultClear(const Args& a) {
  Check(OpenSet(a)->ClearFaultRules());
  std::cout << "cleared every fault rule\n";
  return 0;
}

int RunSectorChange(const Args& a, SectorChange change) {
  const std::unique_ptr<SetControl> set = OpenSet(a);
  const uint64_t sector = ParseSector(a.sector);
  Check(set->ChangeSector(change, sector));
  std::cout << ControlVerbName(SectorChangeVerb(change)) << ": sector " << sector << " done\n";
  return 0;
}

// Follows the scrub until it no longer runs: a bar with rate and ETA on a
// terminal, a plain line every 5 s otherwise. Exit 1 if it paused on an error.
int FollowScrub(SetControl* set, const Args& a) {
  const bool tty = ::isatty(STDOUT_FILENO) && !a.json;
  auto last_line = std::chrono::steady_clock::now() - std::chrono::hours(1);
  ScrubStatus st;
  for (;;) {
    Check(set->Scrub(ControlVerb::kScrubStatus, std::nullopt, &st));
    const json j = ScrubStatusToJson(st);
    if (st.state.run != ScrubState::Run::kRunning) {
      if (tty) std::cout << "\n";
      Print(a, j, PrintScrub);
      return st.error.empty() ? 0 : 1;
    }
    const auto now = std::chrono::steady_clock::now();
    if (tty) {
      char line[160];
      std::snprintf(line, sizeof line, "\r%s %5.1f%%  %-5s  %7.1f MB/s  ETA %-8s",
                    Bar(j["percent"].get<double>() / 100).c_str(), j["percent"].get<double>(),
                    st.in_spare ? "spare" : "main", st.bytes_per_second / 1e6,
                    j["eta_seconds"].is_null() ? "-" : Duration(j["eta_seconds"].get<double>()).c_str());
      std::cout << line << std::flush;
    } else if (!a.json && now - last_line >= std::chrono::seconds(5)) {
      PrintScrub(j);
      std::cout << std::flush;
      last_line = now;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

// scrub start, pause, resume, stop, status: the change, then where the scrub is.
int RunScrub(const Args& a, ControlVerb verb) {
  std::optional<uint64_t> rate;
  if (Given(a.rate_options)) {
    rate = Number("--rate", a.rate, 0, kMaxScrubRateMB) * 1'000'000;
  }
  const std::unique_ptr<SetControl> set = OpenSet(a);
  ScrubStatus st;
  Check(set->Scrub(verb, rate, &st));
  if (a.wait) return FollowScrub(set.get(), a);
  Print(a, ScrubStatusToJson(st), PrintScrub);
  return 0;
}

// --- the command line ----------------------------------------------------------

// A verb: its subcommand and what runs it.
struct Verb {
  CLI::App* cmd;
  std::function<int(const Args&)> run;
};

void AddTarget(CLI::App* cmd, Args* a) {
  cmd->add_option("TARGET", a->target, "DB, mountpoint or exposed file")->required();
}
void AddJson(CLI::App* cmd, Args* a) { cmd->add_flag("--json", a->json, "machine-readable output"); }

enum VerbArgs { kNoTarget, kTarget, kTargetJson };

// Adds a verb under `parent`, with TARGET (and --json) as asked; its own
// options follow.
CLI::App* AddVerb(CLI::App* parent, Args* a, std::vector<Verb>* verbs, const std::string& name,
                  const std::string& help, VerbArgs with, std::function<int(const Args&)> run) {
  auto* cmd = parent->add_subcommand(name, help);
  if (with != kNoTarget) AddTarget(cmd, a);
  if (with == kTargetJson) AddJson(cmd, a);
  verbs->push_back({cmd, std::move(run)});
  return cmd;
}

// create, rebind and the verbs that read.
void AddSetVerbs(CLI::App* app, Args* a, std::vector<Verb>* verbs) {
  auto* create = AddVerb(app, a, verbs, "create", "make a new set from MAIN and SPARE (never overwrites one)",
                         kNoTarget, RunCreate);
  create->add_option("MAIN", a->main, "the image or disk with bad sectors")->required();
  create->add_option("SPARE", a->spare, "the image or disk that holds the spare slots")->required();
  create->add_option("--db", a->db, "the set's DB (default: SPARE.db)");
  create->add_option("--sector-size", a->sector_size, "remap unit, 512 or 4096 (default 4096)");
  create->add_option("--spare-size", a->spare_size, "create SPARE as a file of this size (e.g. 64M) if it does not exist");
  auto* status = AddVerb(app, a, verbs, "status", "health, slots and counters", kTargetJson, RunStatus);
  status->add_flag("--check", a->check, "exit with remapctl health's status bits");
  AddVerb(app, a, verbs, "health",
          "one line for scripts and monitors; the exit status has a bit per condition (see remapctl(8))", kTargetJson,
          RunHealth);
  AddVerb(app, a, verbs, "metrics", "the status in Prometheus' text format", kTarget, RunMetrics);
  AddVerb(app, a, verbs, "flush", "make every write the daemon acknowledged durable", kTarget, RunFlush);
  auto* map = AddVerb(app, a, verbs, "map",
                      "a picture of the image: remapped, pending and fault sectors and the scrub's position", kTarget,
                      RunMap);
  map->add_option("--width", a->map_width, "cells a row, 8 to 512 (default 64)");
  map->add_option("--rows", a->map_rows, "rows at most, 1 to 4096 (default 16)");
  map->add_option("--svg", a->svg, "write an SVG drawing to this file instead");
  auto* exp = AddVerb(app, a, verbs, "export",
                      "the remapped and pending sectors as a badblocks list, a ddrescue mapfile, an md bad-block list "
                      "or JSON, on stdout",
                      kTarget, RunExport);
  exp->add_option("--format", a->format, "badblocks, ddrescue, md or json")->required();
  auto* imp = AddVerb(app, a, verbs, "import",
                      "make the sectors a badblocks list, a ddrescue mapfile, an md bad-block list or an export "
                      "lists pending (or remapped, where still readable)",
                      kTarget, RunImport);
  imp->add_option("FILE", a->file, "the list")->required();
  imp->add_option("--format", a->format, "badblocks, ddrescue, md or json")->required();
  for (CLI::App* cmd : {exp, imp}) {
    a->block_size_options.push_back(cmd->add_option("--block-size", a->block_size,
                                          "badblocks: the block size the list counts in, a power of two from 512 to "
                                          "1048576 (default: the set's sector size)"));
  }
  a->statuses_options.push_back(imp->add_option("--statuses", a->statuses, std::string("ddrescue: ") + kStatusesHelp));
  imp->add_flag("--remap-readable", a->remap_readable,
                "copy each listed sector that MAIN can still read to a slot instead of making it pending");
  imp->add_flag("--dry-run", a->dry_run, "say what would change, change nothing");
  auto* rebind = AddVerb(
      app, a, verbs, "rebind",
      "accept a new MAIN after a deliberate move (MAIN cloned to another disk or file): records its identity",
      kNoTarget, RunRebind);
  rebind->add_option("DB", a->target, "the set's DB (the set must not be mounted)")->required();
  rebind->add_option("--main", a->new_main, "the new MAIN, of the set's size")->required();
  auto* list = AddVerb(app, a, verbs, "list", "remapped and pending sectors", kTargetJson, RunList);
  a->list_sectors = list->add_option("--sectors", a->sectors, "only these sectors: N, A-B or A+COUNT");
  auto* check = AddVerb(app, a, verbs, "check",
                        "consistency of MAIN's identity, spare header, DB, table and fault rules (exit 1 on a problem)",
                        kTargetJson, RunCheck);
  check->add_option("--main", a->main_override, "MAIN's path, if it moved since the set was last opened");
  check->add_option("--spare", a->spare_override, "SPARE's path, if it moved since the set was last opened");
  auto* events =
      AddVerb(app, a, verbs, "events", "the newest events (remaps, pending sectors, bad slots)", kTargetJson, RunEvents);
  events->add_option("--limit", a->limit, "how many, 1 to " + std::to_string(kMaxEventLimit) + " (default 50)");
}

// fault add, list, remove, clear and the sector changes.
void AddChangeVerbs(CLI::App* app, Args* a, std::vector<Verb>* verbs) {
  auto* fault = app->add_subcommand("fault", "fault-injection rules");
  fault->require_subcommand(1);
  auto* add =
      AddVerb(fault, a, verbs, "add", "make sectors of MAIN or SPARE (slots) fail or be slow", kTarget, RunFaultAdd);
  add->add_option("--device", a->device, "main or spare (default main)");
  add->add_option("--sectors", a->sectors, "N, A-B or A+COUNT (slots for spare)")->required();
  add->add_option("--op", a->op, "read, write or both (default both)");
  a->times_given = add->add_option("--times", a->times, "hit only the first N (at least 1) matching requests (default: all)");
  add->add_option("--probability", a->probability, "hit a matching request with this chance (0-1]");
  add->add_option("--seed", a->seed, "seed for --probability (reproducible), 0 to 2^64-1");
  add->add_option("--delay-ms", a->delay_ms, "delay hit requests by this many ms (at most 60000) instead of failing them");
  auto* fimport = AddVerb(fault, a, verbs, "import",
                          "a rule on MAIN for each bad area of a GNU ddrescue mapfile (a real disk's failure, "
                          "rehearsed read-write)",
                          kTarget, RunFaultImport);
  fimport->add_option("MAPFILE", a->file, "the mapfile")->required();
  a->fault_import_op = fimport->add_option("--op", a->op, "what the rules fail: read, write or both (default read)");
  a->statuses_options.push_back(fimport->add_option("--statuses", a->statuses, kStatusesHelp));
  AddVerb(fault, a, verbs, "list", "the rules", kTargetJson, RunFaultList);
  auto* remove = AddVerb(fault, a, verbs, "remove", "remove one rule", kTarget, RunFaultRemove);
  remove->add_option("ID", a->rule_id, "the rule's id (see fault list)")->required();
  AddVerb(fault, a, verbs, "clear", "remove every rule", kTarget, RunFaultClear);

  const std::pair<SectorChange, const char*> sector_verbs[] = {
      {SectorChange::kRemap, "copy a readable sector to a spare slot and serve it from there"},
      {SectorChange::kUnremap, "serve a sector from MAIN again (copied back and verified)"},
      {SectorChange::kMarkPending, "declare a sector unreadable until it is written"}};
  for (const auto& [change_, help] : sector_verbs) {
    const SectorChange change = change_;  // a structured binding cannot be captured (clang)
    auto* cmd = AddVerb(app, a, verbs, std::string(ControlVerbName(SectorChangeVerb(change))), help, kTarget,
                        [change](const Args& args) { return RunSectorChange(args, change); });
    cmd->add_option("SECTOR", a->sector, "the sector")->required();
  }
}

// scrub start, pause, resume, stop, status.
void AddScrubVerbs(CLI::App* app, Args* a, std::vector<Verb>* verbs) {
  auto* scrub = app->add_subcommand("scrub", "background scan: reads MAIN and the slots in use, rescues marginal "
                                             "sectors (runs in the daemon)");
  scrub->require_subcommand(1);
  const std::tuple<ControlVerb, const char*, const char*> scrub_verbs[] = {
      {ControlVerb::kScrubStart, "start", "begin a pass from sector 0"},
      {ControlVerb::kScrubPause, "pause", "pause the pass where it is"},
      {ControlVerb::kScrubResume, "resume", "go on with a paused pass"},
      {ControlVerb::kScrubStop, "stop", "end the pass where it is"},
      {ControlVerb::kScrubStatus, "status", "where the scrub is"}};
  for (const auto& [verb_, name, help] : scrub_verbs) {
    const ControlVerb verb = verb_;
    auto* cmd =
        AddVerb(scrub, a, verbs, name, help, kTargetJson, [verb](const Args& args) { return RunScrub(args, verb); });
    if (verb == ControlVerb::kScrubStart || verb == ControlVerb::kScrubResume) {
      a->rate_options.push_back(cmd->add_option("--rate", a->rate,
                                                "read at most this many MB/s (10^6 bytes), 0 for no limit (default: "
                                                "the daemon's scrub_rate, or the pass's own on resume)"));
    }
    if (verb == ControlVerb::kScrubStart || verb == ControlVerb::kScrubResume || verb == ControlVerb::kScrubStatus) {
      cmd->add_flag("--wait", a->wait, "follow the pass until it stops running (a progress bar on a terminal)");
    }
  }
}

// Parses the command line; an exit code when that is all there is to do
// (help, or a usage error, reported).
std::optional<int> Parse(CLI::App& app, int argc, char** argv) {
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
  } catch (const CLI::CallForVersion&) {
    std::cout << "remapctl " << REMAPFS_VERSION << "\n";
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
  return std::nullopt;
}

int Run(int argc, char** argv) {
  CLI::App app{"remapctl: create, inspect and steer remapfs sets.\n"
               "TARGET is a set's DB, or the mountpoint (or exposed file) of a running remapfs."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("remapctl ") + REMAPFS_VERSION);
  Args args;
  std::vector<Verb> verbs;
  AddSetVerbs(&app, &args, &verbs);
  AddChangeVerbs(&app, &args, &verbs);
  AddScrubVerbs(&app, &args, &verbs);
  if (const std::optional<int> done = Parse(app, argc, argv)) return *done;
  spdlog::set_level(spdlog::level::warn);  // an offline engine's info lines are noise here
  for (const Verb& verb : verbs) {
    if (*verb.cmd) return verb.run(args);
  }
  return 2;  // not reached: CLI11 requires a verb
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
