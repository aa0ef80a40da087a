#include "store/metrics.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string_view>

namespace remapfs {

namespace {

std::string_view CounterHelp(std::string_view counter) {
  static const std::pair<std::string_view, std::string_view> help[] = {
      {"reads", "Read requests."},
      {"writes", "Write requests."},
      {"bytes_read", "Bytes read by requests."},
      {"bytes_written", "Bytes written by requests."},
      {"flushes", "Flushes (fsync and close)."},
      {"flush_errors", "Flushes that failed (a sync or a commit)."},
      {"main_read_errors", "Failed reads of MAIN, before retries."},
      {"main_write_errors", "Failed writes of MAIN, before the failing sectors were found."},
      {"spare_read_errors", "Failed reads of spare slots."},
      {"spare_write_errors", "Failed writes of spare slots (each made its slot bad)."},
      {"remaps", "Sectors moved to a spare slot (SMART 196 Reallocated_Event_Count)."},
      {"unremaps", "Sectors served from MAIN again."},
      {"pending_marked", "Sectors that became pending."},
      {"read_eio", "Read requests answered with EIO."},
      {"write_eio", "Write requests answered with EIO."},
      {"spare_exhausted", "Remaps refused because no spare slot was free."},
      {"scrub_bytes", "Bytes the scrub read."},
      {"scrub_unreadable", "Sectors the scrub found unreadable (SMART 198 Offline_Uncorrectable)."},
      {"scrub_rescued", "Marginal sectors the scrub moved to a new slot."},
      {"scrub_slots_retired", "Spare slots the scrub found failing."},
      {"scrub_passes", "Full scrub passes."},
  };
  for (const auto& [name, text] : help) {
    if (name == counter) return text;
  }
  return "A remapfs counter.";
}

// Label values are the uuid and fixed words; escaped anyway, as the format says.
std::string Escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

class Exposition {
 public:
  explicit Exposition(std::string_view uuid) : uuid_(Escape(uuid)) {}

  void Family(std::string_view name, std::string_view type, std::string_view help) {
    name_ = name;
    text_ += fmt::format("# HELP remapfs_{} {}\n# TYPE remapfs_{} {}\n", name, help, name, type);
  }
  // A sample of the current family; label: `key="value"` pairs after uuid.
  template <typename T>
  void Sample(T value, std::string_view labels = {}) {
    text_ += fmt::format("remapfs_{}{{uuid=\"{}\"{}{}}} {}\n", name_, uuid_, labels.empty() ? "" : ",", labels, value);
  }
  template <typename T>
  void Gauge(std::string_view name, std::string_view help, T value) {
    Family(name, "gauge", help);
    Sample(value);
  }
  std::string Take() { return std::move(text_); }

 private:
  const std::string uuid_;
  std::string name_;
  std::string text_;
};

std::string Label(std::string_view key, std::string_view value) {
  return fmt::format("{}=\"{}\"", key, Escape(value));
}

}  // namespace

std::string MetricsText(const SetStatus& st) {
  const Health& h = st.health;
  Exposition m(st.uuid);
  m.Family("info", "gauge", "The set; always 1.");
  m.Sample(1, Label("sector_size", std::to_string(st.sector_size)));
  m.Gauge("size_bytes", "The exposed image's size (MAIN's).", st.size);

  m.Family("state", "gauge", "The set's state as status shows it: 1 for the one it is in.");
  const std::string state = h.State();
  for (const char* s : {"ok", "degraded", "spare-low", "spare-exhausted", "store-failing", "sync-failed"}) {
    m.Sample(state == s ? 1 : 0, Label("state", s));
  }
  m.Family("health_condition", "gauge", "1 for each condition of remapctl health that holds.");
  const int bits = HealthBits(h);
  for (const auto& [bit, name] : HealthBitNames()) m.Sample((bits & bit) ? 1 : 0, Label("condition", name));

  m.Gauge("remapped_sectors", "Sectors served from a spare slot (SMART 5 Reallocated_Sector_Ct).",
          h.remapped_sectors);
  m.Gauge("pending_sectors", "Sectors known unreadable until written (SMART 197 Current_Pending_Sector).",
          h.pending_sectors);
  m.Family("slots", "gauge", "Spare slots by state; they add up to the spare's slots.");
  m.Sample(h.slots_free, Label("state", "free"));
  m.Sample(h.slots_used, Label("state", "used"));
  m.Sample(h.slots_bad, Label("state", "bad"));
  m.Sample(h.slots_quarantined, Label("state", "quarantined"));
  m.Gauge("spare_available_ratio", "Free spare slots over all (NVMe Available Spare).",
          h.slots_total ? static_cast<double>(h.slots_free) / h.slots_total : 0.0);
  m.Gauge("spare_threshold_ratio", "Below this available ratio the state is spare-low (NVMe Available Spare Threshold).",
          0.1);
  m.Gauge("table_bytes", "Memory of the remap table.", h.table_bytes);

  for (const auto& [name, value] : h.counters) {
    m.Family(name + "_total", "counter", CounterHelp(name));
    m.Sample(value);
  }

  const ScrubStatus& sc = st.scrub;
  m.Family("scrub_state", "gauge", "The scrub's state: 1 for the one it is in.");
  for (ScrubState::Run run : {ScrubState::Run::kIdle, ScrubState::Run::kRunning, ScrubState::Run::kPaused}) {
    m.Sample(sc.state.run == run ? 1 : 0, Label("state", ScrubRunName(run)));
  }
  m.Gauge("scrub_progress_ratio", "How far the current pass is.",
          sc.total_bytes ? static_cast<double>(sc.done_bytes) / static_cast<double>(sc.total_bytes) : 0.0);
  m.Gauge("scrub_last_pass_timestamp_seconds", "When the last full pass ended (0: never).",
          static_cast<double>(sc.state.last_pass_us) / 1e6);
  return m.Take();
}

MetricsFile::MetricsFile(std::string path, std::chrono::seconds interval, std::function<SetStatus()> status)
    : path_(std::move(path)), interval_(interval), status_(std::move(status)) {}

MetricsFile::~MetricsFile() { Stop(); }

namespace {

// A new temporary file beside `path` (hidden: a collector reads *.prom only).
Status MakeTemp(const std::string& path, std::string* tmp, int* fd) {
  const std::filesystem::path target(path);
  std::error_code ec;
  if (std::filesystem::is_directory(target, ec)) return Status::InvalidArgument(path + " is a directory");
  *tmp = (target.parent_path() / ("." + target.filename().string() + ".XXXXXX")).string();
  *fd = ::mkostemp(tmp->data(), O_CLOEXEC);
  if (*fd < 0) return Status::FromErrno("cannot write " + path + ": create a file in its directory", errno);
  return Status::OK();
}

}  // namespace

Status MetricsFile::Probe(const std::string& path) {
  std::string tmp;
  int fd = -1;
  Status s = MakeTemp(path, &tmp, &fd);
  if (!s.ok()) return s;
  ::close(fd);
  ::unlink(tmp.c_str());
  return s;
}

Status MetricsFile::Write(const std::string& path, const std::string& text) {
  std::string tmp;
  int fd = -1;
  Status s = MakeTemp(path, &tmp, &fd);
  if (!s.ok()) return s;
  size_t done = 0;
  while (s.ok() && done < text.size()) {
    const ssize_t r = ::write(fd, text.data() + done, text.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) s = Status::FromErrno("write " + tmp, errno);
    if (r > 0) done += static_cast<size_t>(r);
  }
  // Readable by a collector that runs as another user (node_exporter).
  if (s.ok() && ::fchmod(fd, 0644) != 0) s = Status::FromErrno("chmod " + tmp, errno);
  if (::close(fd) != 0 && s.ok()) s = Status::FromErrno("close " + tmp, errno);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Status::FromErrno("rename to " + path, errno);
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

Status MetricsFile::Start() {
  Status s = Write(path_, MetricsText(status_()));
  if (!s.ok()) return s;
  thread_ = std::thread([this] { Loop(); });
  return s;
}

void MetricsFile::Loop() {
  for (;;) {
    {
      MutexLock lock(&mu_);
      const auto deadline = std::chrono::steady_clock::now() + interval_;
      while (!stop_ && cv_.WaitUntil(mu_, deadline)) {
      }
      if (stop_) return;
    }
    const Status s = Write(path_, MetricsText(status_()));
    if (!s.ok() && s.message() != last_error_) spdlog::warn("metrics: {}", s.ToString());
    if (s.ok() && !last_error_.empty()) spdlog::info("metrics: {} written again", path_);
    last_error_ = s.ok() ? "" : s.message();
  }
}

void MetricsFile::Stop() {
  {
    MutexLock lock(&mu_);
    if (stop_) return;
    stop_ = true;
    cv_.SignalAll();
  }
  if (!thread_.joinable()) return;
  thread_.join();
  const Status s = Write(path_, MetricsText(status_()));
  if (!s.ok()) spdlog::warn("metrics: {}", s.ToString());
}

}  // namespace remapfs
