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
#include <limits>
#include <optional>
#include <spdlog/spdlog.h>
#include <stdexcept>

namespace remapfs {

using json = nlohmann::ordered_json;

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

// A whole-number field of a request: `def` when absent (required when def
// is nullopt). Floats, negative numbers and numbers above T's range are
// refused: converting them would be undefined behaviour or wrap around.
template <typename T>
T Whole(const json& j, const char* key, std::optional<T> def = std::nullopt) {
  if (def && !j.contains(key)) return *def;
  const json& v = j.at(key);
  uint64_t u = 0;
  bool ok = false;
  if (v.is_number_unsigned()) {
    u = v.get<uint64_t>();
    ok = true;
  } else if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    u = static_cast<uint64_t>(v.get<int64_t>());
    ok = true;
  }
  if (!ok || u > std::numeric_limits<T>::max()) {
    throw std::invalid_argument(std::string("'") + key + "' must be a whole number from 0 to " +
                                std::to_string(std::numeric_limits<T>::max()));
  }
  return static_cast<T>(u);
}

json Error(const std::string& msg) { return json{{"ok", false}, {"error", msg}}; }
json Result(json result) { return json{{"ok", true}, {"result", std::move(result)}}; }

// A change is answered only once durable.
json Changed(Engine* engine, const Status& s, json result) {
  if (!s.ok()) return Error(s.ToString());
  Status f = engine->Flush();
  if (!f.ok()) return Error("the change is made but not yet durable: " + f.ToString());
  return Result(std::move(result));
}

bool IsChange(const std::string& verb) {
  for (const char* v : {"fault-add", "fault-remove", "fault-clear", "remap", "unremap", "mark-pending"}) {
    if (verb == v) return true;
  }
  return false;
}

json Dispatch(Engine* engine, const json& req, bool read_only) {
  const std::string verb = req.at("verb").get<std::string>();
  if (read_only && IsChange(verb)) {
    return Error("the set is mounted read-only (-o ro): '" + verb +
                 "' would change it; mount it read-write, or unmount it and change its DB offline");
  }
  if (verb == "status") {
    json j = HealthToJson(engine->GetHealth());
    j["uuid"] = engine->uuid();
    j["sector_size"] = engine->sector_size();
    j["size"] = engine->size();
    return Result(j);
  }
  if (verb == "list") {
    const uint64_t first = Whole<uint64_t>(req, "first", 0);
    const uint64_t end = Whole<uint64_t>(req, "end", engine->sector_count());
    json arr = json::array();
    for (const Mapping& m : engine->List(first, end)) arr.push_back(MappingToJson(m));
    return Result(arr);
  }
  if (verb == "fault-list") {
    json arr = json::array();
    for (const FaultRule& r : engine->ListFaultRules()) arr.push_back(FaultRuleToJson(r));
    return Result(arr);
  }
  if (verb == "fault-add") {
    FaultRule rule, added;
    Status s = FaultRuleFromJson(req.at("rule"), &rule);
    rule.id = 0;  // the engine numbers new rules
    if (s.ok()) s = engine->AddFaultRule(rule, &added);
    return Changed(engine, s, s.ok() ? FaultRuleToJson(added) : json());
  }
  if (verb == "fault-remove") return Changed(engine, engine->RemoveFaultRule(Whole<uint64_t>(req, "id")), json());
  if (verb == "fault-clear") {
    engine->ClearFaultRules();
    return Changed(engine, Status::OK(), json());
  }
  if (verb == "remap") return Changed(engine, engine->Remap(Whole<uint64_t>(req, "sector")), json());
  if (verb == "unremap") return Changed(engine, engine->Unremap(Whole<uint64_t>(req, "sector")), json());
  if (verb == "mark-pending") {
    return Changed(engine, engine->MarkPending(Whole<uint64_t>(req, "sector")), json());
  }
  if (verb == "flush") return Changed(engine, Status::OK(), json());
  return Error("unknown verb '" + verb + "'");
}

}  // namespace

json HealthToJson(const Health& h) {
  json counters = json::object();
  for (const auto& [name, value] : h.counters) counters[name] = value;
  return json{{"state", h.State()},
              {"remapped_sectors", h.remapped_sectors},
              {"pending_sectors", h.pending_sectors},
              {"slots", {{"total", h.slots_total},
                         {"free", h.slots_free},
                         {"used", h.slots_used},
                         {"bad", h.slots_bad},
                         {"quarantined", h.slots_quarantined}}},
              {"table_bytes", h.table_bytes},
              {"was_clean", h.was_clean},
              {"store_error", h.store_error},
              {"sync_error", h.sync_error},
              {"previous_store_error", h.previous_store_error},
              {"counters", counters}};
}

json MappingToJson(const Mapping& m) {
  json j{{"sector", m.sector}, {"state", m.pending() ? "pending" : "remapped"}};
  j["slot"] = m.pending() ? json(nullptr) : json(m.slot);
  return j;
}

json FaultRuleToJson(const FaultRule& r) {
  return json{{"id", r.id},
              {"device", DeviceName(r.device)},
              {"first", r.sectors.first},
              {"count", r.sectors.count},
              {"op", FaultOpName(r.op)},
              {"times", r.times},
              {"probability", r.probability},
              {"seed", r.seed},
              {"delay_ms", r.delay_ms}};
}

Status FaultRuleFromJson(const json& j, FaultRule* r) {
  try {
    auto device = ParseDevice(j.at("device").get<std::string>());
    auto op = ParseFaultOp(j.value("op", std::string("both")));
    if (!device) return Status::InvalidArgument("device must be main or spare");
    if (!op) return Status::InvalidArgument("op must be read, write or both");
    r->id = Whole<uint64_t>(j, "id", 0);
    r->device = *device;
    r->op = *op;
    r->sectors = {Whole<uint64_t>(j, "first"), Whole<uint64_t>(j, "count", 1)};
    r->times = Whole<uint64_t>(j, "times", 0);
    r->probability = j.value("probability", 1.0);
    r->seed = Whole<uint64_t>(j, "seed", 0);
    r->delay_ms = Whole<uint32_t>(j, "delay_ms", 0);
  } catch (const std::exception& e) {  // json's, or Whole's
    return Status::InvalidArgument(std::string("bad fault rule: ") + e.what());
  }
  return Status::OK();
}

std::string HandleControlRequest(Engine* engine, std::string_view line, bool read_only) {
  json reply;
  try {
    json req = json::parse(line);
    if (!req.is_object()) {
      reply = Error("a request is a JSON object");
    } else {
      reply = Dispatch(engine, req, read_only);
    }
  } catch (const std::exception& e) {
    reply = Error(std::string("bad request: ") + e.what());
  }
  // replace: an error message may quote the request's invalid UTF-8, which
  // a strict dump would throw on.
  return reply.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
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

Status ControlClient::Call(const json& request, json* result) {
  std::string line;
  if (!SendAll(fd_, request.dump() + "\n") || !RecvReply(fd_, &line)) {
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
  try {
    json reply = json::parse(line);
    if (!reply.value("ok", false)) return Status::InvalidArgument(reply.value("error", std::string("failed")));
    *result = reply.value("result", json());
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("bad reply from the daemon: ") + e.what());
  }
  return Status::OK();
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

void ControlServer::Start(Engine* engine, bool read_only) {
  engine_ = engine;
  read_only_ = read_only;
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
  if (!ServerSendAll(fd, wake_fd_, HandleControlRequest(engine_, line, read_only_))) {
    spdlog::warn("control channel: a client did not take its reply; dropped it");
  }
}

}  // namespace remapfs
