// Fault rules: parsing, validation, matching (times, seeded probability,
// delay), and how FaultyBackend maps byte requests to sectors and slots.
#include "store/fault.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "store/set_format.h"
#include "tests/support/mem_env.h"

namespace remapfs {
namespace {

constexpr uint64_t kMax = UINT64_MAX;

std::optional<std::pair<uint64_t, uint64_t>> Parse(std::string_view s) {
  auto r = ParseSectorRange(s);
  if (!r) return std::nullopt;
  return std::make_pair(r->first, r->count);
}

using P = std::pair<uint64_t, uint64_t>;

TEST(ParseSectorRange, Forms) {
  EXPECT_EQ(Parse("5"), P(5, 1));
  EXPECT_EQ(Parse("0"), P(0, 1));
  EXPECT_EQ(Parse("3-7"), P(3, 5));
  EXPECT_EQ(Parse("3-3"), P(3, 1));
  EXPECT_EQ(Parse("3+4"), P(3, 4));
  EXPECT_EQ(Parse("18446744073709551614"), P(kMax - 1, 1));
  EXPECT_EQ(Parse("0-18446744073709551614"), P(0, kMax));
  EXPECT_EQ(Parse("0+18446744073709551615"), P(0, kMax));
  EXPECT_EQ(Parse("1+18446744073709551614"), P(1, kMax - 1));
}

TEST(ParseSectorRange, Rejects) {
  for (std::string_view bad : {"", "-", "+", "-5", "+5", "5-", "5+", "a", "5x", " 5", "5 ", "1-2-3", "1+2+3",
                               "1-+2", "0x10", "3+0", "1.5", "-1-2"}) {
    EXPECT_EQ(Parse(bad), std::nullopt) << '"' << bad << '"';
  }
  // Reversed.
  EXPECT_EQ(Parse("7-3"), std::nullopt);
  EXPECT_EQ(Parse("1-0"), std::nullopt);
  // Overflow: of the number itself, and of the range's end.
  EXPECT_EQ(Parse("18446744073709551616"), std::nullopt);
  EXPECT_EQ(Parse("99999999999999999999999"), std::nullopt);
  EXPECT_EQ(Parse("18446744073709551615"), std::nullopt);
  EXPECT_EQ(Parse("0-18446744073709551615"), std::nullopt);
  EXPECT_EQ(Parse("18446744073709551615+1"), std::nullopt);
  EXPECT_EQ(Parse("1+18446744073709551615"), std::nullopt);
  EXPECT_EQ(Parse("10+18446744073709551610"), std::nullopt);
  EXPECT_EQ(Parse("5-18446744073709551616"), std::nullopt);
}

TEST(FaultNames, RoundTrip) {
  for (Device d : {Device::kMain, Device::kSpare}) EXPECT_EQ(ParseDevice(DeviceName(d)), d);
  for (FaultOp op : {FaultOp::kRead, FaultOp::kWrite, FaultOp::kBoth}) EXPECT_EQ(ParseFaultOp(FaultOpName(op)), op);
  EXPECT_EQ(ParseDevice("MAIN"), std::nullopt);
  EXPECT_EQ(ParseDevice(""), std::nullopt);
  EXPECT_EQ(ParseFaultOp("rw"), std::nullopt);
}

FaultRule Rule(Device device, uint64_t first, uint64_t count, FaultOp op) {
  FaultRule r;
  r.device = device;
  r.sectors = {first, count};
  r.op = op;
  return r;
}

TEST(FaultRule, Validate) {
  EXPECT_TRUE(Rule(Device::kMain, 0, 100, FaultOp::kBoth).Validate(100).ok());
  EXPECT_TRUE(Rule(Device::kMain, 99, 1, FaultOp::kBoth).Validate(100).ok());
  for (const auto& [first, count] : std::vector<P>{{0, 0}, {100, 1}, {99, 2}, {0, 101}, {1, kMax}, {kMax, 1}, {kMax, kMax}}) {
    Status s = Rule(Device::kSpare, first, count, FaultOp::kRead).Validate(100);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << first << "+" << count;
    EXPECT_EQ(s.message().find('\n'), std::string::npos);
  }
  EXPECT_FALSE(Rule(Device::kMain, 0, 1, FaultOp::kRead).Validate(0).ok());
  for (double p : {0.0, -0.5, 1.0000001, 2.0, std::numeric_limits<double>::quiet_NaN(),
                   std::numeric_limits<double>::infinity()}) {
    FaultRule r = Rule(Device::kMain, 0, 1, FaultOp::kRead);
    r.probability = p;
    EXPECT_EQ(r.Validate(10).code(), Status::Code::kInvalidArgument) << p;
  }
  FaultRule r = Rule(Device::kMain, 0, 1, FaultOp::kRead);
  r.probability = 1e-9;
  EXPECT_TRUE(r.Validate(10).ok());
  r.delay_ms = FaultRule::kMaxDelayMs;
  EXPECT_TRUE(r.Validate(10).ok());
  r.delay_ms = FaultRule::kMaxDelayMs + 1;  // a delay could hold up the shutdown
  EXPECT_EQ(r.Validate(10).code(), Status::Code::kInvalidArgument);
}

TEST(FaultRule, ToString) {
  FaultRule r = Rule(Device::kMain, 100, 100, FaultOp::kWrite);
  EXPECT_EQ(r.ToString(), "main 100-199 write");
  r.times = 3;
  r.probability = 0.5;
  r.seed = 7;
  r.delay_ms = 20;
  const std::string s = r.ToString();
  EXPECT_EQ(s.rfind("main 100-199 write times=3 p=0.5", 0), 0u) << s;
  EXPECT_NE(s.find("seed=7"), std::string::npos) << s;
  EXPECT_NE(s.find("delay=20ms"), std::string::npos) << s;
}

TEST(FaultRules, EmptyMatchesNothing) {
  FaultRules rules;
  auto e = rules.Match(Device::kMain, FaultOp::kRead, 0, kMax);
  EXPECT_FALSE(e.fail);
  EXPECT_EQ(e.delay_ms, 0u);
}

TEST(FaultRules, MatchesDeviceOpAndOverlap) {
  FaultRules rules;
  rules.Add(Rule(Device::kMain, 10, 5, FaultOp::kRead));  // 10..14
  EXPECT_TRUE(rules.Match(Device::kMain, FaultOp::kRead, 10, 11).fail);
  EXPECT_TRUE(rules.Match(Device::kMain, FaultOp::kRead, 14, 15).fail);
  EXPECT_TRUE(rules.Match(Device::kMain, FaultOp::kRead, 0, 11).fail);
  EXPECT_TRUE(rules.Match(Device::kMain, FaultOp::kRead, 14, 100).fail);
  EXPECT_TRUE(rules.Match(Device::kMain, FaultOp::kRead, 0, 100).fail);
  EXPECT_FALSE(rules.Match(Device::kMain, FaultOp::kRead, 0, 10).fail);   // ends just before
  EXPECT_FALSE(rules.Match(Device::kMain, FaultOp::kRead, 15, 20).fail);  // starts just after
  EXPECT_FALSE(rules.Match(Device::kMain, FaultOp::kWrite, 10, 15).fail);
  EXPECT_FALSE(rules.Match(Device::kSpare, FaultOp::kRead, 10, 15).fail);
  rules.Add(Rule(Device::kSpare, 0, 1, FaultOp::kBoth));
  EXPECT_TRUE(rules.Match(Device::kSpare, FaultOp::kRead, 0, 1).fail);
  EXPECT_TRUE(rules.Match(Device::kSpare, FaultOp::kWrite, 0, 1).fail);
  EXPECT_FALSE(rules.Match(Device::kSpare, FaultOp::kWrite, 1, 2).fail);
}

TEST(FaultRules, TimesCountsOnlyMatchingRequests) {
  FaultRules rules;
  FaultRule r = Rule(Device::kMain, 5, 1, FaultOp::kWrite);
  r.times = 2;
  rules.Add(r);
  // Requests the rule does not match do not use it up.
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(rules.Match(Device::kMain, FaultOp::kRead, 5, 6).fail);
    EXPECT_FALSE(rules.Match(Device::kMain, FaultOp::kWrite, 6, 7).fail);
    EXPECT_FALSE(rules.Match(Device::kSpare, FaultOp::kWrite, 5, 6).fail);
  }
  EXPECT_TRUE(rules.Match(Device::kMain, FaultOp::kWrite, 0, 10).fail);
  EXPECT_TRUE(rules.Match(Device::kMain, FaultOp::kWrite, 5, 6).fail);
  EXPECT_FALSE(rules.Match(Device::kMain, FaultOp::kWrite, 5, 6).fail);
  EXPECT_FALSE(rules.Match(Device::kMain, FaultOp::kWrite, 5, 6).fail);
  // The used-up rule is still listed.
  EXPECT_EQ(rules.List().size(), 1u);
}

std::vector<bool> Draws(uint64_t seed, double p, int n, uint64_t times = 0) {
  FaultRules rules;
  FaultRule r = Rule(Device::kMain, 0, 1, FaultOp::kBoth);
  r.probability = p;
  r.seed = seed;
  r.times = times;
  rules.Add(r);
  std::vector<bool> out;
  for (int i = 0; i < n; ++i) out.push_back(rules.Match(Device::kMain, FaultOp::kRead, 0, 1).fail);
  return out;
}

TEST(FaultRules, ProbabilityIsSeededAndDeterministic) {
  const auto a = Draws(42, 0.3, 2000);
  EXPECT_EQ(a, Draws(42, 0.3, 2000));  // same seed, same sequence
  EXPECT_NE(a, Draws(43, 0.3, 2000));
  const auto hits = std::count(a.begin(), a.end(), true);
  EXPECT_GT(hits, 2000 * 0.25);
  EXPECT_LT(hits, 2000 * 0.35);
  const auto always = Draws(1, 1.0, 100);
  EXPECT_EQ(std::count(always.begin(), always.end(), true), 100);
  // With times: only the first `times` hits happen, at the seeded draws.
  const auto limited = Draws(42, 0.3, 2000, /*times=*/5);
  EXPECT_EQ(std::count(limited.begin(), limited.end(), true), 5);
  for (size_t i = 0, seen = 0; i < a.size() && seen < 5; ++i) {
    EXPECT_EQ(limited[i], a[i]) << i;
    seen += a[i];
  }
}

TEST(FaultRules, ProbabilityReloadedRuleRepeatsItsSequence) {
  // A rule reloaded from the DB (same id, same seed) draws the same faults.
  FaultRules one, two;
  FaultRule r = Rule(Device::kMain, 0, 10, FaultOp::kRead);
  r.probability = 0.5;
  r.seed = 9;
  const FaultRule stored = one.Add(r);
  two.Add(stored);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(one.Match(Device::kMain, FaultOp::kRead, 3, 4).fail, two.Match(Device::kMain, FaultOp::kRead, 3, 4).fail);
  }
}

TEST(FaultRules, DelayDoesNotFail) {
  FaultRules rules;
  FaultRule slow = Rule(Device::kMain, 0, 10, FaultOp::kBoth);
  slow.delay_ms = 30;
  rules.Add(slow);
  auto e = rules.Match(Device::kMain, FaultOp::kRead, 0, 1);
  EXPECT_FALSE(e.fail);
  EXPECT_EQ(e.delay_ms, 30u);
  FaultRule slower = slow;
  slower.delay_ms = 50;
  rules.Add(slower);
  rules.Add(Rule(Device::kMain, 5, 1, FaultOp::kRead));
  e = rules.Match(Device::kMain, FaultOp::kRead, 5, 6);
  EXPECT_TRUE(e.fail);
  EXPECT_EQ(e.delay_ms, 50u);
}

TEST(FaultRules, IdsRemoveAndClear) {
  FaultRules rules;
  const FaultRule a = rules.Add(Rule(Device::kMain, 1, 1, FaultOp::kRead));
  const FaultRule b = rules.Add(Rule(Device::kMain, 2, 1, FaultOp::kRead));
  EXPECT_EQ(a.id, 1u);
  EXPECT_EQ(b.id, 2u);
  FaultRule reloaded = Rule(Device::kMain, 3, 1, FaultOp::kRead);
  reloaded.id = 10;
  EXPECT_EQ(rules.Add(reloaded).id, 10u);
  EXPECT_EQ(rules.Add(Rule(Device::kMain, 4, 1, FaultOp::kRead)).id, 11u);

  EXPECT_TRUE(rules.Remove(a.id));
  EXPECT_FALSE(rules.Remove(a.id));
  EXPECT_FALSE(rules.Remove(999));
  EXPECT_FALSE(rules.Match(Device::kMain, FaultOp::kRead, 1, 2).fail);
  EXPECT_TRUE(rules.Match(Device::kMain, FaultOp::kRead, 2, 3).fail);
  std::vector<uint64_t> ids;
  for (const FaultRule& r : rules.List()) ids.push_back(r.id);
  EXPECT_EQ(ids, (std::vector<uint64_t>{2, 10, 11}));

  rules.Clear();
  EXPECT_TRUE(rules.List().empty());
  EXPECT_FALSE(rules.Match(Device::kMain, FaultOp::kRead, 0, kMax).fail);
  // Removing the last rule also empties the set.
  const FaultRule c = rules.Add(Rule(Device::kMain, 7, 1, FaultOp::kRead));
  EXPECT_GT(c.id, 11u);  // ids are never reused
  EXPECT_TRUE(rules.Match(Device::kMain, FaultOp::kRead, 7, 8).fail);
  EXPECT_TRUE(rules.Remove(c.id));
  EXPECT_FALSE(rules.Match(Device::kMain, FaultOp::kRead, 7, 8).fail);
}

// FaultyBackend over a MemEnv file: byte ranges become sectors (MAIN) or
// slots (SPARE, after the header); a failing request transfers nothing.
class FaultyBackendTest : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> Make(Device device, uint32_t ss, uint64_t data_offset, uint64_t size) {
    EXPECT_TRUE(env_.CreateFile("f", size).ok());
    std::unique_ptr<Backend> base;
    EXPECT_TRUE(env_.OpenBackend("f", {}, &base).ok());
    return std::make_unique<FaultyBackend>(std::move(base), device, ss, data_offset, rules_);
  }
  MemEnv env_;
  std::shared_ptr<FaultRules> rules_ = std::make_shared<FaultRules>();
};

TEST_F(FaultyBackendTest, MainSectorsFromBytes) {
  auto b = Make(Device::kMain, 512, 0, 64 * 512);
  rules_->Add(Rule(Device::kMain, 4, 1, FaultOp::kWrite));
  const std::string data(100, 'x');
  EXPECT_TRUE(b->WriteAt(3 * 512 + 412, 100, data.data()).ok());  // ends at 4*512
  EXPECT_TRUE(b->WriteAt(5 * 512, 100, data.data()).ok());
  Status s = b->WriteAt(4 * 512 - 1, 2, data.data());                // 1 byte into sector 4
  EXPECT_TRUE(s.IsIOError());
  EXPECT_EQ(s.ToErrno(), EIO);
  s = b->WriteAt(0, 64 * 512, std::string(64 * 512, 'y').data());
  EXPECT_EQ(s.ToErrno(), EIO);
  // Nothing of the failed requests was written.
  const std::string now = env_.Contents("f");
  EXPECT_EQ(now[4 * 512], '\0');
  EXPECT_EQ(now[0], '\0');
  EXPECT_EQ(now[3 * 512 + 412], 'x');
  // Reads are not affected by a write rule.
  std::string out(512, '\0');
  EXPECT_TRUE(b->ReadAt(4 * 512, 512, out.data()).ok());
}

TEST_F(FaultyBackendTest, SpareSlotsStartAfterTheHeader) {
  auto b = Make(Device::kSpare, 4096, kSpareHeaderSize, kSpareHeaderSize + 4 * 4096);
  rules_->Add(Rule(Device::kSpare, 0, 1, FaultOp::kBoth));  // slot 0
  std::string buf(4096, 'h');
  EXPECT_TRUE(b->WriteAt(0, kSpareHeaderSize, buf.data()).ok());  // the header is never a slot
  EXPECT_TRUE(b->ReadAt(0, kSpareHeaderSize, buf.data()).ok());
  EXPECT_EQ(b->ReadAt(kSpareHeaderSize, 4096, buf.data()).ToErrno(), EIO);
  EXPECT_EQ(b->ReadAt(kSpareHeaderSize - 1, 2, buf.data()).ToErrno(), EIO);  // header + slot 0
  EXPECT_TRUE(b->ReadAt(SlotOffset(1, 4096), 4096, buf.data()).ok());
  rules_->Clear();
  rules_->Add(Rule(Device::kSpare, 2, 1, FaultOp::kWrite));
  EXPECT_TRUE(b->WriteAt(SlotOffset(1, 4096), 4096, buf.data()).ok());
  EXPECT_EQ(b->WriteAt(SlotOffset(1, 4096), 4097, buf.data()).ToErrno(), EIO);
  EXPECT_EQ(b->WriteAt(SlotOffset(2, 4096) + 4000, 10, buf.data()).ToErrno(), EIO);
  EXPECT_TRUE(b->WriteAt(SlotOffset(3, 4096), 4096, buf.data()).ok());
  // MAIN rules do not touch SPARE.
  rules_->Add(Rule(Device::kMain, 0, 4, FaultOp::kBoth));
  EXPECT_TRUE(b->ReadAt(SlotOffset(0, 4096), 4 * 4096, std::string(4 * 4096, '\0').data()).ok());
}

TEST_F(FaultyBackendTest, DelayedRequestSucceedsLate) {
  auto b = Make(Device::kMain, 512, 0, 8 * 512);
  FaultRule slow = Rule(Device::kMain, 2, 1, FaultOp::kRead);
  slow.delay_ms = 40;
  slow.times = 1;
  rules_->Add(slow);
  std::string out(512, '\0');
  auto t = std::chrono::steady_clock::now();
  EXPECT_TRUE(b->ReadAt(2 * 512, 512, out.data()).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - t, std::chrono::milliseconds(40));
  t = std::chrono::steady_clock::now();
  EXPECT_TRUE(b->ReadAt(2 * 512, 512, out.data()).ok());  // times=1: fast again
  EXPECT_LT(std::chrono::steady_clock::now() - t, std::chrono::milliseconds(40));
}

}  // namespace
}  // namespace remapfs
