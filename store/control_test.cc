// The control channel's request handling: every reply is one line of valid
// JSON, also for hostile requests (found by tests/fuzz/fuzz_control).
#include "store/control.h"

#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "store/meta_store.h"
#include "tests/support/testharness.h"

namespace remapfs {
namespace {

using json = nlohmann::ordered_json;

json Reply(Engine* e, std::string_view line, bool read_only = false) {
  const std::string r = HandleControlRequest(e, line, read_only);
  EXPECT_EQ(r.find('\n'), r.size() - 1) << r;
  return json::parse(r);  // throws (fails the test) when not JSON
}

TEST(Control, InvalidUtf8GetsAnErrorReply) {
  test::QuietLogs quiet;
  test::MemSet set;
  auto e = set.OpenOrDie();
  // The parser's message quotes the bad byte; the reply must still be JSON.
  const json j = Reply(e.get(), "{\"verb\":\"\xbeist\"}");
  EXPECT_FALSE(j["ok"].get<bool>());
  ASSERT_TRUE(e->Close().ok());
}

TEST(Control, NumbersMustBeWholeAndInRange) {
  test::QuietLogs quiet;
  test::MemSet set;
  auto e = set.OpenOrDie();
  for (const char* line : {R"({"verb":"remap","sector":1e300})", R"({"verb":"remap","sector":-1})",
                           R"({"verb":"remap","sector":2.0})", R"({"verb":"list","first":-5})",
                           R"({"verb":"fault-remove","id":1e30})"}) {
    const json j = Reply(e.get(), line);
    EXPECT_FALSE(j["ok"].get<bool>()) << line;
  }
  EXPECT_TRUE(Reply(e.get(), R"({"verb":"remap","sector":2})")["ok"].get<bool>());
  EXPECT_TRUE(e->List(0, UINT64_MAX).size() == 1);
  ASSERT_TRUE(e->Close().ok());
}

// The ranges remapctl checks hold for a request sent directly too.
TEST(Control, FaultAddRefusesOutOfRangeValues) {
  test::QuietLogs quiet;
  test::MemSet set;
  auto e = set.OpenOrDie();
  for (const char* rule : {R"("times":9223372036854775808)", R"("times":18446744073709551615)",
                           R"("times":-1)", R"("probability":0)", R"("probability":1.5)",
                           R"("probability":"0.5")", R"("delay_ms":60001)", R"("seed":-1)",
                           R"("device":"disk")", R"("op":"erase")"}) {
    const std::string line =
        std::string(R"({"verb":"fault-add","rule":{"device":"main","first":1,)") + rule + "}}";
    const json j = Reply(e.get(), line);
    EXPECT_FALSE(j["ok"].get<bool>()) << line;
  }
  EXPECT_TRUE(e->ListFaultRules().empty());
  EXPECT_FALSE(Reply(e.get(), R"({"verb":"fault-remove","id":0})")["ok"].get<bool>());
  const json ok = Reply(e.get(), R"({"verb":"fault-add","rule":{"device":"main","first":1,"times":9223372036854775807}})");
  EXPECT_TRUE(ok["ok"].get<bool>()) << ok.dump();
  ASSERT_TRUE(e->Close().ok());
}

TEST(Control, FaultRuleFromJsonRefusesWrappingNumbers) {
  FaultRule r;
  EXPECT_TRUE(FaultRuleFromJson(json{{"device", "main"}, {"first", 1}, {"delay_ms", 5}}, &r).ok());
  EXPECT_EQ(r.delay_ms, 5u);
  for (const json& bad : {json{{"device", "main"}, {"first", 1}, {"delay_ms", uint64_t{1} << 32}},
                          json{{"device", "main"}, {"first", 1}, {"delay_ms", -5e30}},
                          json{{"device", "main"}, {"first", -1}},
                          json{{"device", "main"}, {"first", 1}, {"times", -1}},
                          json{{"device", "main"}, {"first", 1.5}}}) {
    const Status s = FaultRuleFromJson(bad, &r);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad.dump();
  }
}

TEST(Control, ReadOnlyRefusesChangingVerbs) {
  test::QuietLogs quiet;
  test::MemSet set;
  auto e = set.OpenOrDie();
  for (const char* line : {R"({"verb":"fault-add","rule":{"device":"main","first":1}})",
                           R"({"verb":"fault-remove","id":1})", R"({"verb":"fault-clear"})",
                           R"({"verb":"remap","sector":2})", R"({"verb":"unremap","sector":2})",
                           R"({"verb":"mark-pending","sector":2})"}) {
    const json j = Reply(e.get(), line, /*read_only=*/true);
    EXPECT_FALSE(j["ok"].get<bool>()) << line;
    EXPECT_NE(j["error"].get<std::string>().find("mounted read-only"), std::string::npos) << j.dump();
  }
  for (const char* line : {R"({"verb":"status"})", R"({"verb":"list"})", R"({"verb":"fault-list"})",
                           R"({"verb":"flush"})"}) {
    EXPECT_TRUE(Reply(e.get(), line, true)["ok"].get<bool>()) << line;
  }
  EXPECT_TRUE(e->List(0, UINT64_MAX).empty());
  EXPECT_TRUE(e->ListFaultRules().empty());
  ASSERT_TRUE(e->Close().ok());
}

// The daemon's channel has a fresh name, which the DB records; a client
// talks to it only through the very DB file the daemon has open.
TEST(Control, ClientReachesOnlyTheDaemonOfThatVeryDb) {
  test::QuietLogs quiet;
  test::MemSet set;
  std::unique_ptr<ControlServer> server, other;
  ASSERT_TRUE(ControlServer::Listen(&server).ok());
  ASSERT_TRUE(ControlServer::Listen(&other).ok());
  EXPECT_NE(server->name(), other->name());
  EXPECT_EQ(server->name().size(), std::string("remapfs/").size() + 32) << server->name();
  EngineOptions options;
  options.control_socket = server->name();
  auto e = set.OpenOrDie(options);
  server->Start(e.get(), /*read_only=*/false);
  {
    std::unique_ptr<MetaStore> meta;
    ASSERT_TRUE(MetaStore::Open(set.paths.db, /*read_only=*/true, &meta).ok());
    EXPECT_EQ(meta->info().control_socket, server->name());
  }

  std::unique_ptr<ControlClient> client;
  Status s = ControlClient::Connect(set.paths.db, server->name(), &client);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(client);
  EXPECT_EQ(client->pid(), ::getpid());
  json result;
  s = client->Call(ControlRequest{.verb = ControlVerb::kStatus}, &result);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(result["uuid"], e->uuid());
  // Reaching the daemon and asking its status flush nothing.
  EXPECT_EQ(result["counters"]["flushes"], 0) << result.dump();

  // A copy of the DB names the same channel, but the daemon has not the copy open.
  const std::string copy = set.dir.File("copy.db");
  std::filesystem::copy_file(set.paths.db, copy);
  client.reset();
  s = ControlClient::Connect(copy, server->name(), &client);
  EXPECT_EQ(s.code(), Status::Code::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find("copy"), std::string::npos) << s.message();
  EXPECT_FALSE(client);

  // A name nobody listens on (a stale one): no daemon.
  const std::string stale = other->name();
  other.reset();
  s = ControlClient::Connect(set.paths.db, stale, &client);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(client);

  server->Stop();
  ASSERT_TRUE(e->Close().ok());
}

}  // namespace
}  // namespace remapfs
