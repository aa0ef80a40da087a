// The control channel between `remapctl` and a running daemon: one JSON
// object a line over an abstract Unix socket, one request a connection
// (control_protocol.h: the verbs and the JSON forms). Every change is
// flushed (durable) before its reply.
//
// Abstract names are open to every local user, first come first served. So
// the daemon listens on a fresh unguessable name ("remapfs/" and 128 random
// bits), which the set's DB (owner-only) records as the set is opened: only
// who may read the DB finds the channel, and a name bound by someone else
// cannot stop a mount. Both ends check the other (SO_PEERCRED): the daemon
// serves only root and its own user; a client talks only to a process of
// root or the DB's owner that has that very DB file open.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "store/control_protocol.h"
#include "store/engine.h"
#include "store/scrub.h"

namespace remapfs {

// Answers one request line. Never throws; malformed input gets an error reply.
// read_only (a read-only mount): the verbs that change the set are refused.
// scrubber: the daemon's (the scrub verbs); nullptr: they are refused.
// place: where the set is and who serves it (the status verb's).
std::string HandleControlRequest(Engine* engine, std::string_view line, bool read_only = false,
                                 Scrubber* scrubber = nullptr, const SetPlace& place = {});

// remapctl's end: a checked connection to the daemon that has a DB open.
class ControlClient {
 public:
  // Connects to `socket_name` (what `db` records) and checks whom it
  // reached. OK with *result set: the daemon that has this very file open;
  // OK with *result null: nothing listens there (a stale name: no daemon
  // runs). NotFound: the process that listens has not this very file open
  // (same device and inode; `db` is a copy of a set in use). Mismatch: that
  // process belongs to neither root nor the DB's owner (it bound the name:
  // it is not talked to). IOError: the check itself failed.
  static Status Connect(const std::string& db, const std::string& socket_name,
                        std::unique_ptr<ControlClient>* result);
  ~ControlClient();
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;

  pid_t pid() const { return pid_; }
  // Sends one request and reads its reply; once per connection (the daemon
  // serves one request a connection). The daemon's own refusal comes back
  // as InvalidArgument with its message.
  Status Call(const ControlRequest& request, ControlJson* result);

 private:
  ControlClient(int fd, pid_t pid, int pidfd) : fd_(fd), pid_(pid), pidfd_(pidfd) {}
  const int fd_;
  const pid_t pid_;
  const int pidfd_;  // -1 when the kernel has no pidfd_open
};

// The status of a set a daemon serves (the control verb `status`); scrubber
// nullptr: the scrub's state as the DB has it.
SetStatus LiveStatus(Engine* engine, const Scrubber* scrubber, const SetPlace& place);

// A background worker of the daemon: accepts connections and answers them
// one at a time. Stop() wakes it (eventfd) and joins it. It never waits on a
// client once stopped: every wait for a client also watches the eventfd, so
// a request not yet received is dropped, and a reply the client does not
// read (a stopped remapctl) is dropped after a 0.5 s grace. A request being
// served (an engine call, which may wait for slow I/O, then its flush) is
// finished first. Without a stop, a client silent for 5 s is dropped.
class ControlServer {
 public:
  // Listens on a fresh unguessable name; serves nothing before Start. Call
  // it in the process that serves: clients check the process that listened.
  static Status Listen(std::unique_ptr<ControlServer>* result);
  const std::string& name() const { return name_; }
  // Starts serving. REQUIRES: engine outlives the server (stop the server
  // first), and its DB records name() (EngineOptions::control_socket).
  // read_only, scrubber: see HandleControlRequest (scrubber too must
  // outlive the server).
  void Start(Engine* engine, bool read_only, Scrubber* scrubber = nullptr, SetPlace place = {});
  ~ControlServer();
  void Stop();

 private:
  ControlServer(std::string name, int listen_fd, int wake_fd);
  void Run();
  void Serve(int fd);

  const std::string name_;
  const int listen_fd_;
  const int wake_fd_;
  Engine* engine_ = nullptr;
  Scrubber* scrubber_ = nullptr;
  bool read_only_ = false;
  SetPlace place_;
  std::thread thread_;
};

}  // namespace remapfs
