// The control channel between `remapctl` and a running daemon: one JSON
// object a line over an abstract Unix socket named "remapfs/<set uuid>".
// Requests: {"verb": "status" | "list" (first, end) | "fault-list" |
// "fault-add" (rule) | "fault-remove" (id) | "fault-clear" | "remap" (sector)
// | "unremap" (sector) | "mark-pending" (sector) | "flush"}. Replies:
// {"ok": true, "result": ...} or {"ok": false, "error": "one line"}.
// Every change is flushed (durable) before its reply.
//
// Only root and the daemon's owner may connect (checked with SO_PEERCRED).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>

#include "store/engine.h"

namespace remapfs {

// JSON forms shared by remapctl (offline and live) and the daemon.
nlohmann::ordered_json HealthToJson(const Health& h);
nlohmann::ordered_json MappingToJson(const Mapping& m);
nlohmann::ordered_json FaultRuleToJson(const FaultRule& r);
// Parses a rule (id 0 when absent); InvalidArgument with the reason on a bad field.
Status FaultRuleFromJson(const nlohmann::ordered_json& j, FaultRule* r);

// Answers one request line. Never throws; malformed input gets an error reply.
std::string HandleControlRequest(Engine* engine, std::string_view line);

std::string ControlSocketName(const std::string& uuid);

// Sends one request to the daemon of set `uuid`. NotFound when no daemon
// listens; the daemon's own error comes back as an InvalidArgument/IOError.
Status ControlCall(const std::string& uuid, const nlohmann::ordered_json& request, nlohmann::ordered_json* result);

// A background worker of the daemon: accepts connections and answers them
// one at a time. Stop() wakes it (eventfd) and joins it. It never waits on a
// client once stopped: every wait for a client also watches the eventfd, so
// a request not yet received is dropped, and a reply the client does not
// read (a stopped remapctl) is dropped after a 0.5 s grace. A request being
// served (an engine call, which may wait for slow I/O, then its flush) is
// finished first. Without a stop, a client silent for 5 s is dropped.
class ControlServer {
 public:
  // REQUIRES: engine outlives the server (stop the server first).
  static Status Start(Engine* engine, std::unique_ptr<ControlServer>* result);
  ~ControlServer();
  void Stop();

 private:
  ControlServer(Engine* engine, int listen_fd, int wake_fd);
  void Run();
  void Serve(int fd);

  Engine* const engine_;
  const int listen_fd_;
  const int wake_fd_;
  std::thread thread_;
};

}  // namespace remapfs
