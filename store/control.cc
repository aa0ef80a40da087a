#include "store/control.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <spdlog/spdlog.h>

namespace remapfs {

using json = ControlJson;

namespace {

constexpr size_t kMaxLine = 1 << 20;

// Fills an abstract-namespace address; returns its length.
socklen_t AbstractAddress(const std::string& name, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  const size_t n = std::min(name.size(), sizeof(addr->sun_path) - 1);
  std::memcpy(addr->sun_path + 1, name.data(), n);  // sun_path[0] == '\0': abstract
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}

bool SendAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t r = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<size_t>(r);
  }
  return true;
}

// The client's read of the daemon's reply: up to and without the first
// '\n', in chunks (the connection carries nothing after it), however long:
// kMaxLine bounds requests, but a live `list` of a big table is megabytes.
// False on error or EOF before the '\n'.
bool RecvReply(int fd, std::string* line) {
  line->clear();
  char buf[1 << 16];
  for (;;) {
    const ssize_t r = ::recv(fd, buf, sizeof(buf), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    const auto* nl = static_cast<const char*>(std::memchr(buf, '\n', static_cast<size_t>(r)));
    line->append(buf, nl ? static_cast<size_t>(nl - buf) : static_cast<size_t>(r));
    if (nl) return true;
  }
}

// The server side of one connection. The client socket is non-blocking and
// every wait for the client also watches the server's wake eventfd, so that
// Stop() never waits on a client (DESIGN.md: a worker is woken from any
// wait): a request not fully received is dropped at once (nothing was done);
// a reply the client does not read (a stopped or stuck remapctl) gets a short
// grace, then is dropped. Without a stop, a client that makes no progress
// for kClientTimeoutMs is dropped so that it cannot block the others.
constexpr int kClientTimeoutMs = 5000;
constexpr auto kStopGrace = std::chrono::milliseconds(500);

enum class Ready { kYes, kStopping, kTimeout };

// Waits until `fd` is ready for `events` (or has an error, which the next
// call reports), the server stops (wake_fd readable; -1: not watched) or
// timeout_ms passes.
Ready WaitClient(int fd, short events, int wake_fd, int timeout_ms) {
  pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
  const nfds_t n = wake_fd >= 0 ? 2 : 1;
  for (;;) {
    const int r = ::poll(fds, n, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Ready::kTimeout;
    if (n == 2 && fds[1].revents != 0) return Ready::kStopping;
    return Ready::kYes;
  }
}

bool ServerRecvLine(int fd, int wake_fd, std::string* line) {
  line->clear();
  char buf[4096];
  for (;;) {
    const ssize_t r = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r > 0) {
      const auto* nl = static_cast<const char*>(std::memchr(buf, '\n', static_cast<size_t>(r)));
      line->append(buf, nl ? static_cast<size_t>(nl - buf) : static_cast<size_t>(r));
      if (nl) return true;
      if (line->size() > kMaxLine) return false;
      continue;
    }
    if (r == 0) return false;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
    if (WaitClient(fd, POLLIN, wake_fd, kClientTimeoutMs) != Ready::kYes) return false;
  }
}

bool ServerSendAll(int fd, int wake_fd, const std::string& s) {
  size_t done = 0;
  std::optional<std::chrono::steady_clock::time_point> deadline;  // set once stopping
  while (done < s.size()) {
    const ssize_t r = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r > 0) {
      done += static_cast<size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return false;
    int timeout_ms = kClientTimeoutMs;
    if (deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      timeout_ms = static_cast<int>(left.count());
    }
    const Ready w = WaitClient(fd, POLLOUT, deadline ? -1 : wake_fd, timeout_ms);
    if (w == Ready::kTimeout) return false;
    if (w == Ready::kStopping) deadline = std::chrono::steady_clock::now() + kStopGrace;
  }
  return true;
}

// A change is answered only once durable.
json Changed(Engine* engine, const Status& s, json result) {
  if (!s.ok()) return ControlReplyError(s.ToString());
  Status f = engine->Flush();
  if (!f.ok()) return ControlReplyError("the change is made but not yet durable: " + f.ToString());
  return ControlReplyOk(std::move(result));
}

// The scrub verbs: the change, durable, then where the scrub is.
json DispatchScrub(Engine* engine, Scrubber* scrubber, const ControlRequest& r) {
  if (!scrubber) return ControlReplyError("this remapfs does not scrub");
  Status s;
  switch (r.verb) {
    case ControlVerb::kScrubStart: s = scrubber->Start(r.rate); break;
    case ControlVerb::kScrubPause: s = scrubber->Pause(); break;
    case ControlVerb::kScrubResume: s = scrubber->Resume(r.rate); break;
    case ControlVerb::kScrubStop: s = scrubber->Cancel(); break;
    default: return ControlReplyOk(ScrubStatusToJson(scrubber->GetStatus()));
  }
  return Changed(engine, s, s.ok() ? ScrubStatusToJson(scrubber->GetStatus()) : json());
}

}  // namespace

SetStatus LiveStatus(Engine* engine, const Scrubber* scrubber, const SetPlace& place) {
  SetStatus st{engine->uuid(), engine->sector_size(), engine->size(), engine->GetHealth(), {}, place};
  st.scrub = scrubber ? scrubber->GetStatus()
                      : Scrubber::StatusOf(engine->saved_scrub_state(), engine->sector_count(), engine->sector_size(),
                                           st.health.slots_used);
  return st;
}

namespace {

json Dispatch(Engine* engine, Scrubber* scrubber, const SetPlace& place, const ControlRequest& r) {
  switch (r.verb) {
    case ControlVerb::kStatus: return ControlReplyOk(SetStatusToJson(LiveStatus(engine, scrubber, place)));
    case ControlVerb::kList: return ControlReplyOk(ToJsonArray(engine->List(r.first, r.end), MappingToJson));
    case ControlVerb::kFaultList: return ControlReplyOk(ToJsonArray(engine->ListFaultRules(), FaultRuleToJson));
    case ControlVerb::kFaultAdd: {
      FaultRule rule = r.rule, added;
      rule.id = 0;  // the engine numbers new rules
      const Status s = engine->AddFaultRule(rule, &added);
      return Changed(engine, s, s.ok() ? FaultRuleToJson(added) : json());
    }
    case ControlVerb::kFaultRemove: return Changed(engine, engine->RemoveFaultRule(r.id), json());
    case ControlVerb::kFaultClear:
      engine->ClearFaultRules();
      return Changed(engine, Status::OK(), json());
    case ControlVerb::kRemap:
    case ControlVerb::kUnremap:
    case ControlVerb::kMarkPending:
      return Changed(engine, ChangeSector(engine, *VerbSectorChange(r.verb), r.sector), json());
    case ControlVerb::kFlush: return Changed(engine, Status::OK(), json());
    case ControlVerb::kScrubStart:
    case ControlVerb::kScrubPause:
    case ControlVerb::kScrubResume:
    case ControlVerb::kScrubStop:
    case ControlVerb::kScrubStatus:
      return DispatchScrub(engine, scrubber, r);
  }
  return ControlReplyError("unknown verb");
}

// The verb first: a read-only mount refuses a change whatever its arguments.
json Answer(Engine* engine, Scrubber* scrubber, const SetPlace& place, std::string_view line, bool read_only) {
  json req;
  Status s = ParseControlJson(line, &req);
  if (!s.ok()) return ControlReplyError("bad request: " + s.message());
  if (!req.is_object()) return ControlReplyError("a request is a JSON object");
  ControlVerb verb;
  s = ControlVerbFromJson(req, &verb);
  if (!s.ok()) return ControlReplyError(s.message());
  if (read_only && ChangesSet(verb)) {
    return ControlReplyError("the set is mounted read-only (-o ro): '" + std::string(ControlVerbName(verb)) +
                             "' would change it; mount it read-write, or unmount it and change its DB offline");
  }
  ControlRequest r;
  s = ControlRequestFromJson(req, &r);
  return s.ok() ? Dispatch(engine, scrubber, place, r) : ControlReplyError(s.message());
}

}  // namespace

std::string HandleControlRequest(Engine* engine, std::string_view line, bool read_only, Scrubber* scrubber,
                                 const SetPlace& place) {
  // replace: an error message may quote the request's invalid UTF-8, which
  // a strict dump would throw on.
  return Answer(engine, scrubber, place, line, read_only).dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

namespace {

// Whether process `pid` has a descriptor on the file `file` (same device and
// inode, whatever path it was opened by).
Status HoldsFile(pid_t pid, const struct stat& file, bool* holds) {
  *holds = false;
  const std::string dir_path = "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = ::opendir(dir_path.c_str());
  if (!dir) return Status::FromErrno("cannot check the remapfs daemon (pid " + std::to_string(pid) + ")", errno);
  const int dir_fd = ::dirfd(dir);
  while (const dirent* e = ::readdir(dir)) {
    struct stat st;
    if (e->d_name[0] == '.' || ::fstatat(dir_fd, e->d_name, &st, 0) != 0) continue;  // closed meanwhile
    if (st.st_dev == file.st_dev && st.st_ino == file.st_ino) {
      *holds = true;
      break;
    }
  }
  ::closedir(dir);
  return Status::OK();
}

// Checks the process at the other end of a connection: see
// ControlClient::Connect.
Status CheckPeer(const std::string& db, const ucred& cred) {
  struct stat db_st;
  if (::stat(db.c_str(), &db_st) != 0) return Status::FromErrno("DB " + db, errno);
  const std::string who = "pid " + std::to_string(cred.pid) + ", uid " + std::to_string(cred.uid);
  if (cred.uid != 0 && cred.uid != db_st.st_uid) {
    return Status::Mismatch("the control channel that DB " + db + " names is served by a process (" + who +
                            ") of neither root nor the DB's owner: not its daemon; ignored it");
  }
  const uid_t me = ::geteuid();
  if (me != 0 && me != cred.uid) {
    return Status::IOError("the remapfs daemon of DB " + db + " (" + who + ") serves only root and uid " +
                               std::to_string(cred.uid) + "; run remapctl as one of them",
                           EACCES);
  }
  bool holds = false;
  Status s = HoldsFile(cred.pid, db_st, &holds);
  if (!s.ok()) return s;
  if (!holds) {
    return Status::NotFound("the remapfs daemon (" + who + ") that DB " + db +
                            " names has another DB open: that file is a copy of a set in use");
  }
  return Status::OK();
}

}  // namespace

Status ControlClient::Connect(const std::string& db, const std::string& socket_name,
                              std::unique_ptr<ControlClient>* result) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("socket", errno);
  sockaddr_un addr;
  socklen_t len = AbstractAddress(socket_name, &addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == ECONNREFUSED || err == ENOENT) return Status::OK();  // no daemon runs: a stale name
    return Status::FromErrno("connect to the remapfs daemon", err);
  }
  ucred cred{};
  socklen_t cred_len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0) {
    Status s = Status::FromErrno("SO_PEERCRED", errno);
    ::close(fd);
    return s;
  }
  // Held from before the check, so that the pid cannot be reused meanwhile,
  // and to tell, if the connection ends without a reply, whether it exited.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, cred.pid, 0));
  Status s = CheckPeer(db, cred);
  if (!s.ok()) {
    ::close(fd);
    if (pidfd >= 0) ::close(pidfd);
    return s;
  }
  result->reset(new ControlClient(fd, cred.pid, pidfd));
  return Status::OK();
}

ControlClient::~ControlClient() {
  ::close(fd_);
  if (pidfd_ >= 0) ::close(pidfd_);
}

Status ControlClient::Call(const ControlRequest& request, json* result) {
  std::string line;
  if (!SendAll(fd_, ControlRequestToJson(request).dump() + "\n") || !RecvReply(fd_, &line)) {
    // The daemon never closes a checked client's connection without a reply
    // unless it stops or dies. Whether the change was made is unknown. A
    // dying process closes its sockets before it is gone: give it a moment.
    const std::string who = "the remapfs daemon (pid " + std::to_string(pid_) + ")";
    pollfd exited{pidfd_, POLLIN, 0};
    if (pidfd_ >= 0 ? ::poll(&exited, 1, 2000) > 0 : ::kill(pid_, 0) != 0 && errno == ESRCH) {
      return Status::IOError(
          who + " died (or was stopped) before it replied; see its log: the request may or may not have been done",
          EPIPE);
    }
    return Status::IOError(who + " closed the connection without a reply (is it stopping?); see its log", EPIPE);
  }
  json reply;
  Status s = ParseControlJson(line, &reply);
  if (!s.ok()) return Status::Corruption("bad reply from the daemon: " + s.message());
  return ControlReplyFromJson(reply, result);
}

Status ControlServer::Listen(std::unique_ptr<ControlServer>* result) {
  unsigned char nonce[16];
  if (::getrandom(nonce, sizeof(nonce), 0) != static_cast<ssize_t>(sizeof(nonce))) {
    return Status::FromErrno("getrandom", errno);
  }
  std::string name = "remapfs/";
  for (unsigned char b : nonce) {
    char hex[3];
    std::snprintf(hex, sizeof(hex), "%02x", b);
    name += hex;
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("socket", errno);
  sockaddr_un addr;
  socklen_t len = AbstractAddress(name, &addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 8) != 0) {
    Status s = Status::FromErrno("control socket", errno);
    ::close(fd);
    return s;
  }
  int wake = ::eventfd(0, EFD_CLOEXEC);
  if (wake < 0) {
    Status s = Status::FromErrno("eventfd", errno);
    ::close(fd);
    return s;
  }
  result->reset(new ControlServer(std::move(name), fd, wake));
  return Status::OK();
}

ControlServer::ControlServer(std::string name, int listen_fd, int wake_fd)
    : name_(std::move(name)), listen_fd_(listen_fd), wake_fd_(wake_fd) {}

void ControlServer::Start(Engine* engine, bool read_only, Scrubber* scrubber, SetPlace place) {
  engine_ = engine;
  read_only_ = read_only;
  scrubber_ = scrubber;
  place_ = std::move(place);
  thread_ = std::thread([this] { Run(); });
}

ControlServer::~ControlServer() {
  Stop();
  ::close(listen_fd_);
  ::close(wake_fd_);
}

void ControlServer::Stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(wake_fd_, &one, sizeof(one));
  thread_.join();
}

void ControlServer::Run() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("control channel: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    Serve(fd);
    ::close(fd);
  }
}

void ControlServer::Serve(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
      (cred.uid != 0 && cred.uid != ::geteuid())) {
    spdlog::warn("control channel: refused a client of uid {}", cred.uid);
    return;
  }
  std::string line;
  if (!ServerRecvLine(fd, wake_fd_, &line)) return;
  if (!ServerSendAll(fd, wake_fd_, HandleControlRequest(engine_, line, read_only_, scrubber_, place_))) {
    spdlog::warn("control channel: a client did not take its reply; dropped it");
  }
}

}  // namespace remapfs
