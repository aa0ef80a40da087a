// Daemon: runs a mounted session and owns the ordered shutdown of
// store/DESIGN.md. libfuse 3.14's own multithreaded loop may not wake on exit, and
// `destroy` is not called for plain fuse mounts unless the loop returns, so
// the daemon runs its own worker threads over fuse_session_receive_buf /
// fuse_session_process_buf and never depends on either: a worker blocked in
// read(/dev/fuse) is woken with SIGUSR1 (a no-op handler, no SA_RESTART).
//
// Shutdown starts on SIGTERM, SIGINT or SIGHUP (a dedicated sigwait thread),
// or when the kernel ends the session (fusermount -u, umount). Steps, each
// logged with its duration: 1. stop taking requests and let those in flight
// finish; 2. stop background workers (the control channel, the scrub, the
// metrics file); 3-6. the
// engine's Close (sync, writer, DB, files); then unmount.
#pragma once

#include <atomic>
#include <memory>
#include <pthread.h>
#include <string>
#include <thread>
#include <vector>

#include "fuse/filesystem.h"
#include "store/control.h"
#include "store/metrics.h"
#include "store/scrub.h"

namespace remapfs {

class Daemon {
 public:
  // REQUIRES: called in the main thread before any other thread starts:
  // blocks the shutdown signals so only the signal thread takes them.
  static void PrepareSignals();

  // Takes ownership of a mounted session and runs the filesystem until
  // shutdown; returns the process exit code.
  // REQUIRES: PrepareSignals() was called.
  // metrics: nullptr when no metrics file is written.
  static int Run(fuse_session* session, Filesystem* fs, Engine* engine, Scrubber* scrubber,
                 std::unique_ptr<ControlServer> control, MetricsFile* metrics, int threads);
};

}  // namespace remapfs
