// fuzz_control: the daemon's control channel. Each line of the input is one
// request, answered by HandleControlRequest on a small live engine (a fresh
// set per input, MAIN and SPARE in a MemEnv, the DB a real SQLite file), so
// that sequences (add a fault rule, then remap) are explored. Every reply
// must be one line of valid JSON, an object with a boolean "ok" (and a
// non-empty "error" string when false, a "result" when true). Each line
// that is JSON also goes to FaultRuleFromJson (itself and its "rule"
// member); an accepted rule must survive FaultRuleToJson and back. After
// the input the table must be consistent and the engine close cleanly.
//
// Delay rules are legitimate (a slow sector), but would make later requests
// sleep: the harness removes them right after they are added.
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "store/control.h"

namespace remapfs::fuzz {
namespace {

using json = nlohmann::ordered_json;
constexpr size_t kMaxLines = 32;

const Template& Geometry() {
  static const Template t = MakeTemplate(512, 64, 8);
  return t;
}

bool SameDouble(double a, double b) { return std::memcmp(&a, &b, sizeof(a)) == 0 || (std::isnan(a) && std::isnan(b)); }

void CheckRuleJson(const json& j) {
  FaultRule r;
  const Status s = FaultRuleFromJson(j, &r);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == Status::Code::kInvalidArgument && !s.message().empty(), s.ToString());
    return;
  }
  (void)r.ToString();
  (void)r.Validate(64);
  FaultRule back;
  const json again = FaultRuleToJson(r);
  const Status s2 = FaultRuleFromJson(again, &back);
  FUZZ_CHECK(s2.ok(), "a rule's own JSON is refused: " + s2.ToString());
  FUZZ_CHECK(back.id == r.id && back.device == r.device && back.op == r.op && back.sectors.first == r.sectors.first &&
                 back.sectors.count == r.sectors.count && back.times == r.times && back.seed == r.seed &&
                 back.delay_ms == r.delay_ms && SameDouble(back.probability, r.probability),
             "FaultRuleToJson/FaultRuleFromJson do not round-trip " + r.ToString());
}

void CheckReply(std::string_view line, const std::string& reply) {
  FUZZ_CHECK(!reply.empty() && reply.back() == '\n' && reply.find('\n') == reply.size() - 1,
             "a reply is one line: " + reply);
  const json j = json::parse(reply, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!j.is_discarded(), "the reply is not JSON: " + reply);
  FUZZ_CHECK(j.is_object() && j.contains("ok") && j["ok"].is_boolean(), "the reply has no boolean ok: " + reply);
  if (j["ok"].get<bool>()) {
    FUZZ_CHECK(j.contains("result"), "an ok reply without a result: " + reply);
  } else {
    FUZZ_CHECK(j.contains("error") && j["error"].is_string() && !j["error"].get<std::string>().empty(),
               "an error reply without an error line: " + reply);
  }
  (void)line;
}

}  // namespace
}  // namespace remapfs::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  remapfs::fuzz::Quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace remapfs;
  using namespace remapfs::fuzz;
  const Template& t = Geometry();
  std::unique_ptr<MemEnv> env = MakeEnv(t);
  const std::string db = WorkDir() + "/control.db";
  PutDb(db, t.db);
  EngineOptions o;
  o.env = env.get();
  o.commit_interval = std::chrono::hours(1);
  o.read_attempts = 1;
  std::unique_ptr<Engine> engine;
  Status s = Engine::Open(SetPaths{kMainPath, kSparePath, db}, o, &engine);
  FUZZ_CHECK(s.ok(), s.ToString());

  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (size_t n = 0; n < kMaxLines && !rest.empty(); ++n) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);

    CheckReply(line, HandleControlRequest(engine.get(), line));
    for (const FaultRule& r : engine->ListFaultRules()) {
      if (r.delay_ms != 0) FUZZ_CHECK(engine->RemoveFaultRule(r.id).ok(), "remove a delay rule");
    }
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) {
      CheckRuleJson(j);
      if (j.is_object() && j.contains("rule")) CheckRuleJson(j["rule"]);
    }
  }
  CheckTable(engine.get());
  s = engine->Close();
  FUZZ_CHECK(s.ok(), s.ToString());
  engine.reset();
  RemoveDb(db);
  return 0;
}
