#include "fuse/daemon.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>

#include "store/mutex.h"

namespace remapfs {

namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void NoOp(int) {}

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

// Shared by the workers, the signal thread and the main thread; owned by
// all of them, as a worker that does not come back is left running.
struct State {
  fuse_session* session;
  Mutex mu;
  CondVar cv;
  std::string reason GUARDED_BY(mu);  // non-empty once shutdown is asked for
  int running_workers GUARDED_BY(mu) = 0;

  void Request(const std::string& why) EXCLUDES(mu) {
    MutexLock lock(&mu);
    if (reason.empty()) reason = why;
    cv.SignalAll();
  }
};

void Worker(std::shared_ptr<State> state) {
  fuse_buf buf{};
  while (!fuse_session_exited(state->session)) {
    const int r = fuse_session_receive_buf(state->session, &buf);
    if (r == -EINTR) continue;
    if (r <= 0) {
      if (r < 0) spdlog::error("reading /dev/fuse: {}", std::strerror(-r));
      break;
    }
    fuse_session_process_buf(state->session, &buf);
  }
  std::free(buf.mem);
  // The kernel ended the session (unmount), or shutdown is under way.
  state->Request("the filesystem was unmounted");
  MutexLock lock(&state->mu);
  --state->running_workers;
  state->cv.SignalAll();
}

}  // namespace

void Daemon::PrepareSignals() {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  struct sigaction sa{};
  sa.sa_handler = NoOp;  // no SA_RESTART: a blocked read returns EINTR
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int Daemon::Run(fuse_session* session, Filesystem* fs, Engine* engine, Scrubber* scrubber,
                std::unique_ptr<ControlServer> control, MetricsFile* metrics, int threads) {
  auto shared = std::make_shared<State>();
  State& state = *shared;
  state.session = session;
  std::vector<std::thread> workers;
  {
    MutexLock lock(&state.mu);
    state.running_workers = threads;
  }
  for (int i = 0; i < threads; ++i) workers.emplace_back(Worker, shared);
  std::vector<pthread_t> worker_ids;
  for (auto& w : workers) worker_ids.push_back(w.native_handle());

  // Joined before Run returns (woken below), so that a signal arriving after
  // a stop for another reason finds no thread using what Run is done with.
  std::thread signals([shared] {
    sigset_t set = ShutdownSignals();
    int sig = 0;
    if (sigwait(&set, &sig) == 0) shared->Request(std::string("signal ") + strsignal(sig));
  });

  std::string reason;
  {
    MutexLock lock(&state.mu);
    while (state.reason.empty()) state.cv.Wait(state.mu);
    reason = state.reason;
  }
  // A signal to the thread itself ends its sigwait (if a signal has not
  // already); the shutdown is under way, so its request changes nothing.
  pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  spdlog::info("shutdown requested: {}", reason);
  const auto begin = Clock::now();

  // 1. Stop taking requests; those in flight finish and reply.
  auto t = Clock::now();
  fuse_session_exit(session);
  const int in_flight = fs->gate().active();
  fs->gate().CloseAndDrain();
  spdlog::info("shutdown step 1: FUSE stopped taking requests, {} in flight finished, in {:.1f} ms", in_flight,
               MsSince(t));

  // 2. Background workers: the control channel first (a verb could start
  // a scrub), then the scrub, which saves where it is, then the metrics
  // file, written a last time with the final figures.
  t = Clock::now();
  control->Stop();
  scrubber->Stop();
  if (metrics) metrics->Stop();
  spdlog::info("shutdown step 2: background workers (control channel, scrub{}) stopped in {:.1f} ms",
               metrics ? ", metrics" : "", MsSince(t));

  // 3-6. The engine.
  Status s = engine->Close();

  // Wake workers still blocked in read(/dev/fuse); they exit because the
  // session is marked exited. Bounded: a worker that does not come back is
  // left to the process exit. Only then unmount: fuse_session_unmount closes
  // /dev/fuse, which must not happen under a reader (its descriptor number
  // could be reused while the reader loops).
  t = Clock::now();
  bool joined = false;
  for (int i = 0; i < 200 && !joined; ++i) {
    for (pthread_t id : worker_ids) pthread_kill(id, SIGUSR1);
    MutexLock lock(&state.mu);
    const auto deadline = Clock::now() + std::chrono::milliseconds(10);
    while (state.running_workers != 0 && state.cv.WaitUntil(state.mu, deadline)) {
    }
    joined = state.running_workers == 0;
  }
  for (auto& w : workers) {
    if (joined) {
      w.join();
    } else {
      w.detach();
    }
  }
  fuse_session_unmount(session);
  spdlog::info("unmounted, workers {} in {:.1f} ms; shutdown took {:.1f} ms in all",
               joined ? "joined" : "left to exit", MsSince(t), MsSince(begin));
  if (!s.ok()) spdlog::error("shutdown: {}", s.ToString());
  if (joined) fuse_session_destroy(session);
  return s.ok() ? 0 : 1;
}

}  // namespace remapfs
