// LogLimiter, on an injected clock: the first events of an interval are
// logged one by one, the rest summed up in one line when the interval ends,
// at a Tick after it, or at Flush; nothing is counted twice or dropped.
#include "store/log_limiter.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/testutil.h"

namespace remapfs {
namespace {

using namespace std::chrono_literals;
using test::LogCapture;

class LogLimiterTest : public ::testing::Test {
 protected:
  LogLimiter::Options Options(uint64_t burst = 3) {
    return {.burst = burst, .interval = 10s, .now = [this] { return now_; }};
  }
  // Admits each item; returns the admitted ones.
  std::vector<uint64_t> AdmitAll(LogLimiter* l, uint64_t first, uint64_t end) {
    std::vector<uint64_t> admitted;
    for (uint64_t i = first; i < end; ++i) {
      if (l->Admit(i)) admitted.push_back(i);
    }
    return admitted;
  }

  LogLimiter::Clock::time_point now_{};
  LogCapture log_;
};

TEST_F(LogLimiterTest, BurstThenOneSummaryPerInterval) {
  LogLimiter l("sector", "remapped", spdlog::level::warn, Options());
  EXPECT_EQ(AdmitAll(&l, 100, 110), (std::vector<uint64_t>{100, 101, 102}));
  EXPECT_TRUE(log_.Lines().empty());  // the caller logs the admitted ones
  now_ += 4s;
  EXPECT_FALSE(l.Admit(50));  // still the same interval
  l.Tick();
  EXPECT_TRUE(log_.Lines().empty());
  now_ += 6s;  // the interval ends: its summary comes before the next line
  EXPECT_TRUE(l.Admit(7));
  EXPECT_EQ(log_.Lines(), (std::vector<std::string>{
                              "8 more sectors remapped in 4.0 s (sectors 50 to 109); `remapctl events` lists each"}));
  EXPECT_EQ(AdmitAll(&l, 8, 10), (std::vector<uint64_t>{8, 9}));
  EXPECT_FALSE(l.Admit(10));
  now_ += 10s;
  l.Tick();
  EXPECT_EQ(log_.Lines().back(), "1 more sector remapped in 0.0 s (sector 10); `remapctl events` lists each");
  EXPECT_EQ(log_.Lines().size(), 2u);
  // A new interval opens at the next event: a full burst again.
  EXPECT_EQ(AdmitAll(&l, 0, 3).size(), 3u);
}

TEST_F(LogLimiterTest, FlushTellsThePendingCountAndNothingTwice) {
  LogLimiter l("spare slot", "found bad", spdlog::level::warn, Options(1));
  EXPECT_TRUE(l.Admit(5));
  EXPECT_FALSE(l.Admit(9));
  now_ += 2s;
  EXPECT_FALSE(l.Admit(3));
  l.Flush();
  EXPECT_EQ(log_.Lines(), (std::vector<std::string>{
                              "2 more spare slots found bad in 2.0 s (spare slots 3 to 9); `remapctl events` lists each"}));
  l.Flush();
  l.Tick();
  EXPECT_EQ(log_.Lines().size(), 1u);
  EXPECT_TRUE(l.Admit(4));  // Flush closed the interval
}

TEST_F(LogLimiterTest, QuietIntervalsLogNoSummary) {
  LogLimiter l("sector", "made pending", spdlog::level::warn, Options());
  EXPECT_EQ(AdmitAll(&l, 0, 3).size(), 3u);
  now_ += 1h;
  l.Tick();
  EXPECT_EQ(AdmitAll(&l, 0, 3).size(), 3u);
  l.Flush();
  EXPECT_TRUE(log_.Lines().empty());
}

// A storm of a million events costs a bounded number of lines whatever its
// length, and the lines account for every event.
TEST_F(LogLimiterTest, AStormIsBoundedAndFullyCounted) {
  LogLimiter l("sector", "remapped", spdlog::level::warn, Options(10));
  uint64_t admitted = 0;
  for (uint64_t i = 0; i < 1'000'000; ++i) {
    if (i % 10'000 == 0) now_ += 1s;  // 100 s in all
    admitted += l.Admit(i);
  }
  l.Flush();
  uint64_t summed = 0;
  for (const std::string& line : log_.Lines()) summed += std::stoull(line);
  EXPECT_EQ(admitted + summed, 1'000'000u);
  EXPECT_LE(admitted, 11u * 10);
  EXPECT_LE(log_.Lines().size(), 11u);
}

}  // namespace
}  // namespace remapfs
