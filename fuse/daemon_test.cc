// Daemon::Run on a session that was never mounted: its workers find no
// /dev/fuse and stop at once, as after an unmount, and Run does the whole
// ordered shutdown. Then: no thread of Run outlives it, so a signal that
// comes after a clean stop finds nothing that uses Run's state.
#include "fuse/daemon.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "tests/support/testharness.h"

namespace remapfs {
namespace {

int ThreadCount() {
  DIR* d = opendir("/proc/self/task");
  int n = 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

TEST(Daemon, NoThreadOutlivesRunAndALateSignalStaysPending) {
  Daemon::PrepareSignals();
  // A sanitizer starts a thread of its own at the first thread created: let
  // that happen before the count.
  std::thread([] {}).join();
  const int threads_before = ThreadCount();  // 1, or more with a sanitizer's own
  test::QuietLogs quiet;
  test::MemSet set;
  auto engine = set.OpenOrDie();
  FsConfig config;
  config.file_name = "main.img";
  Filesystem fs(config);
  fs.Attach(engine.get());
  char arg0[] = "remapfs";
  char* argv[] = {arg0, nullptr};
  fuse_args args = FUSE_ARGS_INIT(1, argv);
  fuse_session* se = fuse_session_new(&args, &Filesystem::Ops(), sizeof(fuse_lowlevel_ops), &fs);
  ASSERT_NE(se, nullptr);
  std::unique_ptr<ControlServer> control;
  ASSERT_TRUE(ControlServer::Listen(&control).ok());
  // A scrub runs while the daemon stops: its thread is joined too.
  Scrubber scrubber(engine.get(), ScrubOptions{});
  scrubber.Launch();
  ASSERT_TRUE(scrubber.Start(/*rate=*/1'000'000).ok());
  control->Start(engine.get(), /*read_only=*/false, &scrubber);

  EXPECT_EQ(Daemon::Run(se, &fs, engine.get(), &scrubber, std::move(control), nullptr, 2), 0);
  EXPECT_EQ(ThreadCount(), threads_before);
  fuse_opt_free_args(&args);  // fuse_session_new copied the arguments into it

  // SIGTERM after the stop: blocked everywhere, it stays pending (the
  // process is about to exit) rather than wake a thread on Run's old stack.
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  const timespec wait{1, 0};
  EXPECT_EQ(sigtimedwait(&term, nullptr, &wait), SIGTERM);
}

}  // namespace
}  // namespace remapfs
