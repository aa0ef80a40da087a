// remapfs: the daemon. Usage (also through mount.fuse3 and fstab):
//   remapfs MAIN MOUNTPOINT -o spare=SPARE[,db=DB][,name=FILE][,...] [-f] [-d]
#include <fcntl.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "fuse/daemon.h"
#include "fuse/filesystem.h"
#include "store/control.h"
#include "store/engine.h"
#include "store/metrics.h"
#include "store/parse.h"

namespace remapfs {
namespace {

constexpr const char* kUsage = R"(usage: remapfs MAIN MOUNTPOINT -o spare=SPARE[,OPTION...] [-f] [-d]

Mounts MAIN, with the bad sectors remapped to SPARE, as one regular file in
MOUNTPOINT. Make the set first with `remapctl create MAIN SPARE`.

remapfs options (-o):
  spare=PATH          the SPARE image of the set (required)
  db=PATH             the set's DB (default: SPARE.db; required when SPARE is
                      a block device)
  name=FILE           name of the file in the mount (default: MAIN's base name)
  direct              open MAIN and SPARE O_DIRECT even when they are regular
                      files (block devices always are), so that write errors
                      are reported per request instead of at the next fsync
  cache               let the kernel page-cache the exposed file (faster
                      re-reads; read faults are then seen only on cache misses).
                      Default: every read and write reaches remapfs
  threads=N           FUSE worker threads, 1 to 64 (default 4; 2 when MAIN
                      or SPARE is opened O_DIRECT, where a worker only hands
                      each request to the asynchronous I/O thread)
  commit_ms=N         commit table changes at least every N ms, 1 to 3600000
                      (default 1000)
  scrub_every=H       start a scrub pass (see remapctl scrub) when the last one
                      ended H hours ago, 1 to 8760 (default: only when asked)
  scrub_rate=MB       the rate limit of a scrub started without one, MB/s
                      (10^6 bytes), 0 for none, up to 100000 (default 50)
  scrub_slow_ms=N     a scrub read this slow (ms, 1 to 60000) is marginal: its
                      sector is moved to a spare slot (default 500)
  metrics=FILE        write the set's metrics (Prometheus text format, as
                      remapctl metrics prints them) to FILE, atomically, for
                      node_exporter's textfile collector (name it *.prom)
  metrics_every=S     how often, in seconds, 1 to 86400 (default 15)
  log=FILE            log to FILE (default: stderr with -f, syslog otherwise)
  log_level=LEVEL     debug, info (default), warn or error

FUSE options: -f (foreground), -d (debug: foreground and every request logged
by libfuse), -o allow_other, -o ro etc. are passed to libfuse. With -o ro the
daemon also refuses remapctl's changing verbs.
  -h, --help          this text
  -V, --version       the version

The exposed file has MAIN's size, owner and permission bits. fsync (and
close) makes every acknowledged write durable. Stop with `fusermount -u
MOUNTPOINT`, `umount MOUNTPOINT`, SIGTERM or SIGINT.
)";

constexpr uint64_t kDefaultThreads = 4, kMaxThreads = 64;
// With asynchronous I/O a worker is free again as soon as it has queued a
// request, and each idle worker is one more to wake: two beat four by
// 1.1-1.2x at queue depth 16 (tests/bench/peers.sh), and the second keeps
// requests moving while the other waits for an fsync.
constexpr uint64_t kDefaultAsyncThreads = 2;
constexpr uint64_t kDefaultCommitMs = 1000, kMaxCommitMs = 3600 * 1000;  // an hour
constexpr uint64_t kMaxScrubEveryHours = 24 * 365, kMaxScrubSlowMs = 60000;
constexpr uint64_t kDefaultMetricsEvery = 15, kMaxMetricsEvery = 24 * 3600;

// fuse_opt_parse's result; the strings are malloc'd by it and freed here.
struct Options {
  Options() = default;
  Options(const Options&) = delete;
  Options& operator=(const Options&) = delete;
  ~Options() {
    for (char* s : {spare, db, name, log, log_level, threads, commit_ms, scrub_every, scrub_rate, scrub_slow_ms,
                    metrics, metrics_every}) {
      std::free(s);
    }
  }

  char* spare = nullptr;
  char* db = nullptr;
  char* name = nullptr;
  char* log = nullptr;
  char* log_level = nullptr;
  // Text: fuse_opt's %u is sscanf's, which takes "-5" and wraps it around.
  char* threads = nullptr;
  char* commit_ms = nullptr;
  char* scrub_every = nullptr;
  char* scrub_rate = nullptr;
  char* scrub_slow_ms = nullptr;
  char* metrics = nullptr;
  char* metrics_every = nullptr;
  int direct = 0;
  int cache = 0;
  int read_only = 0;
  int foreground = 0;
  int debug = 0;
  int help = 0;
  int version = 0;
  std::vector<std::string> positional;
};

enum Key { kForeground, kDebug, kHelp, kVersion, kReadOnly, kReadWrite };

#define OPT(templ, field, value) {templ, offsetof(Options, field), value}
const fuse_opt kOptSpec[] = {
    OPT("spare=%s", spare, 0),
    OPT("db=%s", db, 0),
    OPT("name=%s", name, 0),
    OPT("log=%s", log, 0),
    OPT("log_level=%s", log_level, 0),
    OPT("threads=%s", threads, 0),
    OPT("commit_ms=%s", commit_ms, 0),
    OPT("scrub_every=%s", scrub_every, 0),
    OPT("scrub_rate=%s", scrub_rate, 0),
    OPT("scrub_slow_ms=%s", scrub_slow_ms, 0),
    OPT("metrics=%s", metrics, 0),
    OPT("metrics_every=%s", metrics_every, 0),
    OPT("direct", direct, 1),
    OPT("cache", cache, 1),
    FUSE_OPT_KEY("ro", kReadOnly),
    FUSE_OPT_KEY("rw", kReadWrite),
    FUSE_OPT_KEY("-f", kForeground),
    FUSE_OPT_KEY("-d", kDebug),
    FUSE_OPT_KEY("debug", kDebug),
    FUSE_OPT_KEY("-h", kHelp),
    FUSE_OPT_KEY("--help", kHelp),
    FUSE_OPT_KEY("-V", kVersion),
    FUSE_OPT_KEY("--version", kVersion),
    FUSE_OPT_END,
};
#undef OPT

int ProcessOpt(void* data, const char* arg, int key, fuse_args*) {
  auto* o = static_cast<Options*>(data);
  switch (key) {
    case FUSE_OPT_KEY_NONOPT:
      o->positional.emplace_back(arg);
      return 0;
    case kForeground:
      o->foreground = 1;
      return 0;
    case kDebug:
      o->debug = o->foreground = 1;
      return 1;  // libfuse prints every request with -d
    case kReadOnly:
    case kReadWrite:
      o->read_only = key == kReadOnly;  // the last one counts, as for mount(8)
      return 1;                         // the mount's flag, for libfuse
    case kHelp:
      o->help = 1;
      return 0;
    case kVersion:
      o->version = 1;
      return 0;
    default:
      return 1;  // for libfuse
  }
}

// Start-up errors: one line on stderr (or through the pipe to the parent
// when daemonized), exit status 1.
class Startup {
 public:
  // Forks unless foreground: the parent waits for the child's verdict, so
  // `mount` and the shell see the real outcome.
  void Daemonize(bool foreground) {
    if (foreground) return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) Fail(std::string("pipe: ") + std::strerror(errno));
    pid_t pid = fork();
    if (pid < 0) Fail(std::string("fork: ") + std::strerror(errno));
    if (pid > 0) {
      close(fds[1]);
      std::string msg;
      char buf[512];
      ssize_t n;
      while ((n = read(fds[0], buf, sizeof(buf))) > 0) msg.append(buf, static_cast<size_t>(n));
      if (msg == "ok") _exit(0);
      std::fprintf(stderr, "%s\n", msg.empty() ? "remapfs: the daemon died while starting" : msg.c_str());
      _exit(1);
    }
    close(fds[0]);
    pipe_ = fds[1];
    setsid();
  }

  [[noreturn]] void Fail(const std::string& line) {
    const std::string msg = "remapfs: " + line;
    if (pipe_ >= 0) {
      [[maybe_unused]] ssize_t r = write(pipe_, msg.data(), msg.size());
    } else {
      std::fprintf(stderr, "%s\n", msg.c_str());
    }
    _exit(1);
  }

  // Tells the parent that the mount is up, and detaches from the terminal.
  void Done() {
    if (pipe_ < 0) return;
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      close(null);
    }
    [[maybe_unused]] ssize_t r = write(pipe_, "ok", 2);
    close(pipe_);
    pipe_ = -1;
  }

 private:
  int pipe_ = -1;
};

// libfuse's own messages (fuse_log). While starting they are gathered, to
// become part of the one error line; once the daemon runs they go to the log.
std::string g_fuse_text;
bool g_fuse_to_log = false;

__attribute__((format(printf, 2, 0))) void FuseLog(fuse_log_level level, const char* fmt, va_list ap) {
  char buf[1024];
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  g_fuse_text += buf;
  if (!g_fuse_to_log) return;
  size_t nl;
  while ((nl = g_fuse_text.find('\n')) != std::string::npos) {
    const std::string line = g_fuse_text.substr(0, nl);
    g_fuse_text.erase(0, nl + 1);
    if (line.empty()) continue;
    if (level <= FUSE_LOG_ERR) {
      spdlog::error("libfuse: {}", line);
    } else {
      spdlog::info("libfuse: {}", line);
    }
  }
}

// What libfuse said while starting, on one line ("" when nothing).
std::string FuseSaid() {
  std::string text = g_fuse_text;
  g_fuse_text.clear();
  for (char& c : text) {
    if (c == '\n') c = ';';
  }
  while (!text.empty() && (text.back() == ';' || text.back() == ' ')) text.pop_back();
  return text.empty() ? "" : " (" + text + ")";
}

void SetUpLogging(const Options& o, Startup* startup) {
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (o.log) {
      logger = spdlog::basic_logger_mt("remapfs", o.log);
    } else if (o.foreground) {
      logger = spdlog::stderr_color_mt("remapfs");
    } else {
      logger = spdlog::syslog_logger_mt("remapfs", "remapfs", LOG_PID, LOG_DAEMON);
    }
  } catch (const spdlog::spdlog_ex& e) {
    startup->Fail(std::string("cannot open the log: ") + e.what());
  }
  auto level = spdlog::level::info;
  if (o.log_level) {
    // The four levels the help names, not every name spdlog knows.
    const std::string_view name = o.log_level;
    if (name != "debug" && name != "info" && name != "warn" && name != "error") {
      startup->Fail(std::string("unknown log_level '") + o.log_level + "' (debug, info, warn or error)");
    }
    level = spdlog::level::from_str(o.log_level);
  }
  if (o.debug) level = spdlog::level::debug;
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// What the command line asks for, checked: the set's paths, where to mount,
// the file's name and attributes (MAIN's), the worker count and commit interval.
struct Plan {
  SetPaths paths;
  std::string mountpoint;
  FsConfig config;
  uint64_t threads = 0;  // 0: the default, chosen once the set is open
  uint64_t commit_ms = kDefaultCommitMs;
  ScrubOptions scrub;
  std::string metrics;  // empty: none
  uint64_t metrics_every = kDefaultMetricsEvery;
};

// Checks the parsed options and paths; any problem ends the process with one
// line, before anything is opened.
Plan MakePlan(const Options& o, Startup* startup) {
  if (o.positional.size() != 2) {
    startup->Fail("expected MAIN and MOUNTPOINT, got " + std::to_string(o.positional.size()) +
                  " path(s) (see remapfs --help)");
  }
  if (!o.spare) startup->Fail("-o spare=SPARE is required (see remapfs --help)");
  if (!*o.spare) startup->Fail("spare= is empty: give the SPARE image of the set");
  if (o.db && !*o.db) startup->Fail("db= is empty: give the set's DB, or leave db= out for SPARE.db");
  Plan plan;
  for (auto [what, text, max, out] :
       {std::tuple{"threads", o.threads, kMaxThreads, &plan.threads},
        std::tuple{"commit_ms", o.commit_ms, kMaxCommitMs, &plan.commit_ms},
        std::tuple{"metrics_every", o.metrics_every, kMaxMetricsEvery, &plan.metrics_every}}) {
    if (!text) continue;
    Status s = ParseNumber(what, text, 1, max, out);
    if (!s.ok()) startup->Fail(s.message());
  }
  uint64_t every_h = 0, rate_mb = plan.scrub.default_rate / 1'000'000,
           slow_ms = static_cast<uint64_t>(plan.scrub.slow.count());
  for (auto [what, text, min, max, out] :
       {std::tuple{"scrub_every", o.scrub_every, 1, kMaxScrubEveryHours, &every_h},
        std::tuple{"scrub_rate", o.scrub_rate, 0, kMaxScrubRateMB, &rate_mb},
        std::tuple{"scrub_slow_ms", o.scrub_slow_ms, 1, kMaxScrubSlowMs, &slow_ms}}) {
    if (!text) continue;
    Status s = ParseNumber(what, text, min, max, out);
    if (!s.ok()) startup->Fail(s.message());
  }
  plan.scrub.every = std::chrono::hours(every_h);
  plan.scrub.default_rate = rate_mb * 1'000'000;
  plan.scrub.slow = std::chrono::milliseconds(slow_ms);
  if (o.metrics && !*o.metrics) startup->Fail("metrics= is empty: give the file to write the metrics to");
  if (o.metrics) {
    plan.metrics = AbsolutePath(o.metrics);
    const Status s = MetricsFile::Probe(plan.metrics);
    if (!s.ok()) startup->Fail("metrics=: " + s.message());
  }
  if (o.metrics_every && !o.metrics) startup->Fail("metrics_every= needs metrics=FILE");
  SetPaths& paths = plan.paths;
  paths.main = AbsolutePath(o.positional[0]);
  paths.spare = AbsolutePath(o.spare);
  plan.mountpoint = AbsolutePath(o.positional[1]);
  if (o.db) {
    paths.db = AbsolutePath(o.db);
  } else {
    paths.db = DefaultDbPath(paths.spare);
    if (paths.db.empty()) startup->Fail("SPARE " + paths.spare + " is a block device: give -o db=PATH");
  }
  struct stat main_st, mnt_st;
  if (stat(paths.main.c_str(), &main_st) != 0) {
    startup->Fail("MAIN " + paths.main + ": " + std::strerror(errno));
  }
  if (stat(plan.mountpoint.c_str(), &mnt_st) != 0 || !S_ISDIR(mnt_st.st_mode)) {
    startup->Fail("mountpoint " + plan.mountpoint + " is not a directory");
  }
  FsConfig& config = plan.config;
  config.file_name = o.name ? o.name : std::filesystem::path(paths.main).filename().string();
  Status name_ok = CheckFileName(o.name ? "name" : "MAIN's base name", config.file_name);
  if (!name_ok.ok()) startup->Fail(name_ok.message() + (o.name ? "" : " with -o name=FILE"));
  config.db_path = paths.db;
  config.kernel_cache = o.cache;
  config.mode = main_st.st_mode & 07777;
  config.uid = main_st.st_uid;
  config.gid = main_st.st_gid;
  return plan;
}

int Main(int argc, char** argv) {
  fuse_args args = FUSE_ARGS_INIT(argc, argv);
  Options o;
  Startup startup;
  fuse_set_log_func(FuseLog);
  if (fuse_opt_parse(&args, &o, kOptSpec, ProcessOpt) != 0) startup.Fail("bad options (see remapfs --help)");
  if (o.help || o.version) {
    if (o.help) {
      std::fputs(kUsage, stdout);
    } else {
      std::printf("remapfs %s (libfuse %s)\n", REMAPFS_VERSION, fuse_pkgversion());
    }
    fuse_opt_free_args(&args);
    return 0;
  }
  const Plan plan = MakePlan(o, &startup);
  const SetPaths& paths = plan.paths;
  const std::string& mountpoint = plan.mountpoint;

  // Permission bits of the file are enforced by the kernel.
  fuse_opt_add_arg(&args, "-odefault_permissions");
  fuse_opt_add_arg(&args, ("-ofsname=" + EscapeMountOption(paths.main)).c_str());  // MAIN may hold a comma
  fuse_opt_add_arg(&args, "-osubtype=remapfs");
  Filesystem fs(plan.config);
  // The session checks libfuse's options before the set is opened (opening
  // writes to the DB), so bad input leaves the set untouched. It starts no
  // thread, so it survives the fork below.
  fuse_session* se = fuse_session_new(&args, &Filesystem::Ops(), sizeof(fuse_lowlevel_ops), &fs);
  if (!se) startup.Fail("libfuse refused the options" + FuseSaid() + "; see remapfs --help");

  startup.Daemonize(o.foreground);
  SetUpLogging(o, &startup);
  Daemon::PrepareSignals();

  // The channel's name is recorded in the DB as the set is opened, so it is
  // bound first, by the process that serves it (clients check that process).
  std::unique_ptr<ControlServer> control;
  Status s = ControlServer::Listen(&control);
  if (!s.ok()) startup.Fail(s.message());

  EngineOptions eo;
  eo.direct_io = o.direct;
  eo.control_socket = control->name();
  eo.commit_interval = std::chrono::milliseconds(plan.commit_ms);
  std::unique_ptr<Engine> engine;
  s = Engine::Open(paths, eo, &engine);
  if (!s.ok()) startup.Fail(s.message());
  // After the set is open, a failure closes it in order before exiting.
  auto fail_open = [&](const std::string& line) {
    (void)engine->Close();
    startup.Fail(line);
  };

  Scrubber scrubber(engine.get(), plan.scrub);
  const SetPlace place{paths.main, paths.spare, paths.db, mountpoint, getpid(), NowUnixUs()};
  // Written once before the mount, so that a file that cannot be written is
  // refused with the rest of the bad input.
  std::unique_ptr<MetricsFile> metrics;
  if (!plan.metrics.empty()) {
    metrics = std::make_unique<MetricsFile>(plan.metrics, std::chrono::seconds(plan.metrics_every),
                                            [&] { return LiveStatus(engine.get(), &scrubber, place); });
    s = metrics->Start();
    if (!s.ok()) fail_open("metrics: " + s.message());
  }

  fs.Attach(engine.get());
  if (fuse_session_mount(se, mountpoint.c_str()) != 0) {
    if (metrics) metrics->Stop();
    fail_open("cannot mount on " + mountpoint + FuseSaid());
  }

  // A read-only mount changes nothing, so it does not scrub either.
  if (!o.read_only) scrubber.Launch();
  control->Start(engine.get(), o.read_only, &scrubber, place);
  g_fuse_to_log = true;
  FuseSaid();
  spdlog::info("mounted {} at {}/{} (spare {}, DB {})", paths.main, mountpoint, plan.config.file_name, paths.spare,
               paths.db);
  startup.Done();
  const uint64_t threads = plan.threads ? plan.threads : engine->async() ? kDefaultAsyncThreads : kDefaultThreads;
  const int rc = Daemon::Run(se, &fs, engine.get(), &scrubber, std::move(control), metrics.get(),
                             static_cast<int>(threads));
  fuse_opt_free_args(&args);
  spdlog::shutdown();
  // Workers left blocked in the kernel (if any) must not run destructors.
  std::_Exit(rc);
}

}  // namespace
}  // namespace remapfs

int main(int argc, char** argv) { return remapfs::Main(argc, argv); }
