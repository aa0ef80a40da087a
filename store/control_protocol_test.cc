// The control protocol's forms: what one end writes, the other reads back
// unchanged, and malformed input is refused with a reason, never thrown.
#include "store/control_protocol.h"

#include <gtest/gtest.h>

namespace remapfs {
namespace {

using json = ControlJson;

TEST(ControlProtocol, EveryRequestRoundTrips) {
  for (ControlVerb verb : {ControlVerb::kStatus, ControlVerb::kList, ControlVerb::kFaultList, ControlVerb::kFaultAdd,
                           ControlVerb::kFaultRemove, ControlVerb::kFaultClear, ControlVerb::kRemap,
                           ControlVerb::kUnremap, ControlVerb::kMarkPending, ControlVerb::kFlush}) {
    ControlRequest r;
    r.verb = verb;
    r.first = 5;
    r.end = 9;
    r.rule.device = Device::kSpare;
    r.rule.sectors = {3, 4};
    r.rule.probability = 0.125;
    r.id = 7;
    r.sector = 11;
    const json j = ControlRequestToJson(r);
    ControlRequest back;
    const Status s = ControlRequestFromJson(json::parse(j.dump()), &back);
    ASSERT_TRUE(s.ok()) << j.dump() << ": " << s.ToString();
    EXPECT_EQ(back.verb, verb);
    EXPECT_EQ(ControlRequestToJson(back), j);
    EXPECT_EQ(ChangesSet(verb), verb != ControlVerb::kStatus && verb != ControlVerb::kList &&
                                    verb != ControlVerb::kFaultList && verb != ControlVerb::kFlush);
  }
}

TEST(ControlProtocol, MalformedRequestsAreRefusedWithAReason) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({})", "bad request: 'verb' is missing"},
      {R"({"verb": 3})", "bad request: 'verb' must be a string"},
      {R"({"verb": "frob"})", "unknown verb 'frob'"},
      {R"({"verb": "remap"})", "bad request: 'sector' is missing"},
      {R"({"verb": "remap", "sector": -1})", "bad request: 'sector' must be a whole number from 0 to 18446744073709551615"},
      {R"({"verb": "fault-add"})", "bad request: 'rule' is missing"},
      {R"({"verb": "fault-add", "rule": [1]})", "bad request: bad fault rule: 'device' is missing"},
      {R"({"verb": "fault-add", "rule": {"device": "disk", "first": 1}})",
       "bad request: bad fault rule: device must be main or spare"},
      {R"({"verb": "fault-add", "rule": {"device": "main", "first": 1, "delay_ms": 4294967296}})",
       "bad request: bad fault rule: 'delay_ms' must be a whole number from 0 to 4294967295"},
      {R"({"verb": "fault-add", "rule": {"device": "main", "first": 1, "probability": "1"}})",
       "bad request: bad fault rule: 'probability' must be a number"},
  };
  for (const auto& [line, message] : cases) {
    ControlRequest r;
    const Status s = ControlRequestFromJson(json::parse(line), &r);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << line;
    EXPECT_EQ(s.message(), message) << line;
  }
  json j;
  EXPECT_EQ(ParseControlJson("{\"verb\":", &j).code(), Status::Code::kInvalidArgument);
}

TEST(ControlProtocol, StatusRoundTrips) {
  SetStatus st{"u-u-i-d", 512, 1 << 20, {}, {}, {"/m", "/s", "/d", "/mnt", 42, 1700000000000000}};
  st.health = {{{"reads", 3}, {"writes", 4}}, 5, 6, 100, 80, 11, 2, 7, 1234, false, "store", "sync", "previous"};
  const json j = SetStatusToJson(st);
  SetStatus back;
  const Status s = SetStatusFromJson(json::parse(j.dump()), &back);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(SetStatusToJson(back), j);
  EXPECT_EQ(j["state"], "sync-failed");
  EXPECT_EQ(back.place.mountpoint, "/mnt");
  EXPECT_EQ(back.place.pid, 42);
  json no_slots = j;
  no_slots.erase("slots");
  EXPECT_EQ(SetStatusFromJson(no_slots, &back).message(), "'slots' must be an object");
}

TEST(ControlProtocol, MappingsRoundTrip) {
  for (const Mapping m : {Mapping{4, 2}, Mapping{9, kPendingSlot}}) {
    Mapping back{};
    ASSERT_TRUE(MappingFromJson(MappingToJson(m), &back).ok());
    EXPECT_EQ(back, m);
  }
  Mapping m;
  EXPECT_FALSE(MappingFromJson(json{{"sector", 1}, {"state", "remapped"}, {"slot", nullptr}}, &m).ok());
  EXPECT_FALSE(MappingFromJson(json{{"sector", 1}, {"state", "gone"}}, &m).ok());
  std::vector<Mapping> ms;
  EXPECT_FALSE(FromJsonArray(json::object(), MappingFromJson, &ms).ok());
}

TEST(ControlProtocol, Replies) {
  json result;
  ASSERT_TRUE(ControlReplyFromJson(ControlReplyOk(json{1, 2}), &result).ok());
  EXPECT_EQ(result, (json{1, 2}));
  Status s = ControlReplyFromJson(ControlReplyError("not found: no fault rule with id 3"), &result);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "not found: no fault rule with id 3");
  EXPECT_EQ(ControlReplyFromJson(json{{"ok", "yes"}}, &result).code(), Status::Code::kCorruption);
  EXPECT_EQ(ControlReplyFromJson(json::array(), &result).code(), Status::Code::kCorruption);
}

}  // namespace
}  // namespace remapfs
