// The control channel's request handling: every reply is one line of valid
// JSON, also for hostile requests (found by tests/fuzz/fuzz_control).
#include "store/control.h"

#include <nlohmann/json.hpp>

#include "store/testutil.h"

namespace remapfs {
namespace {

using json = nlohmann::ordered_json;

json Reply(Engine* e, std::string_view line) {
  const std::string r = HandleControlRequest(e, line);
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

}  // namespace
}  // namespace remapfs
