// Metrics: a set's status in Prometheus' text exposition format (version
// 0.0.4), for `remapctl metrics` and for node_exporter's textfile
// collector, and MetricsFile, the daemon's writer of that file.
//
// Names: remapfs_<counter>_total for every counter (the names `status`
// shows), remapfs_<field> for the gauges; every sample carries the set's
// uuid as a label. The SMART attributes admins watch map as:
//   5 Reallocated_Sector_Ct    remapfs_remapped_sectors
//   196 Reallocated_Event_Count remapfs_remaps_total
//   197 Current_Pending_Sector  remapfs_pending_sectors
//   198 Offline_Uncorrectable   remapfs_scrub_unreadable_total
// and NVMe's Available Spare and its threshold as remapfs_spare_available_ratio
// and remapfs_spare_threshold_ratio.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "store/health.h"
#include "store/mutex.h"
#include "store/status.h"

namespace remapfs {

// The exposition text of one set.
std::string MetricsText(const SetStatus& status);

// Writes MetricsText to a file every interval, atomically (a temporary file
// in the same directory, then rename), so that a collector never reads a
// half-written file. A failed write is logged once per error and retried at
// the next interval. Thread-safety: Start and Stop from one thread.
class MetricsFile {
 public:
  MetricsFile(std::string path, std::chrono::seconds interval, std::function<SetStatus()> status);
  ~MetricsFile();
  MetricsFile(const MetricsFile&) = delete;
  MetricsFile& operator=(const MetricsFile&) = delete;

  // Writes the file once (an error here is returned: a path that cannot be
  // written is refused at mount), then starts the thread.
  Status Start();
  // Writes the file a last time and joins the thread. Idempotent.
  void Stop() EXCLUDES(mu_);

  // One write of the file.
  static Status Write(const std::string& path, const std::string& text);
  // Whether the file can be written (a temporary file made and removed
  // beside it), without touching anything else: checked with the rest of
  // the command line, before the set is opened.
  static Status Probe(const std::string& path);

 private:
  void Loop() EXCLUDES(mu_);

  const std::string path_;
  const std::chrono::seconds interval_;
  const std::function<SetStatus()> status_;
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::string last_error_;  // the Loop thread's
  std::thread thread_;
};

}  // namespace remapfs
