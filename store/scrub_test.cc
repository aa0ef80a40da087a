// The scrub over a set in memory, its faults made by real fault rules: what
// it finds on MAIN and in the slots, its verbs, where it resumes, its stop.
#include "store/scrub.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/support/testharness.h"

namespace remapfs {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kSectors = 2048;  // 1 MiB of 512-byte sectors: 16 regions

// Waits (a minute at most) until the scrub is no longer running.
ScrubStatus WaitIdle(Scrubber& scrub) {
  const auto deadline = Clock::now() + std::chrono::minutes(1);
  ScrubStatus st = scrub.GetStatus();
  while (st.state.run == ScrubState::Run::kRunning && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
    st = scrub.GetStatus();
  }
  EXPECT_NE(st.state.run, ScrubState::Run::kRunning) << "the pass did not end";
  return st;
}

FaultRule ReadRule(Device device, uint64_t first, uint64_t times = 0, uint32_t delay_ms = 0) {
  FaultRule r;
  r.device = device;
  r.sectors = {first, 1};
  r.op = FaultOp::kRead;
  r.times = times;
  r.delay_ms = delay_ms;
  return r;
}

class ScrubTest : public ::testing::Test {
 protected:
  test::QuietLogs quiet_;
  test::MemSet set_{kSectors * 512, 64, 512};
  std::unique_ptr<Engine> engine_ = set_.OpenOrDie();
  FaultRule added_;
};

TEST_F(ScrubTest, APassFindsUnreadableAndMarginalSectorsAndFailingSlots) {
  // Sectors 7 and 8 live in slots 0 and 1, with their own data.
  const std::string seven(512, '7'), eight(512, '8'), on_main(512, 'm');
  for (uint64_t s : {7, 8}) ASSERT_TRUE(engine_->Remap(s).ok());
  ASSERT_TRUE(engine_->Write(7 * 512, 512, seven.data()).ok());
  ASSERT_TRUE(engine_->Write(8 * 512, 512, eight.data()).ok());
  ASSERT_TRUE(engine_->Write(1500 * 512, 512, on_main.data()).ok());
  ASSERT_TRUE(engine_->Write(900 * 512, 512, on_main.data()).ok());
  // MAIN: 100 never reads; 900 reads at the third try (the region's read
  // takes the first failure); 1500 is slow. SPARE: slot 0 (sector 7) never
  // reads, slot 1 (sector 8) at the second try.
  for (const FaultRule& r : {ReadRule(Device::kMain, 100), ReadRule(Device::kMain, 900, 3),
                             ReadRule(Device::kMain, 1500, 0, 150), ReadRule(Device::kSpare, 0),
                             ReadRule(Device::kSpare, 1, 1)}) {
    ASSERT_TRUE(engine_->AddFaultRule(r, &added_).ok());
  }
  Scrubber scrub(engine_.get(), ScrubOptions{.slow = milliseconds(100)});
  scrub.Launch();
  ASSERT_TRUE(scrub.Start(/*rate=*/0).ok());
  const ScrubStatus st = WaitIdle(scrub);
  EXPECT_EQ(st.error, "");
  EXPECT_NE(st.state.last_pass_us, 0);
  engine_->ClearFaultRules();

  const std::vector<Mapping> table = engine_->List(0, kSectors);
  ASSERT_EQ(table.size(), 5u);
  EXPECT_EQ(table[0], (Mapping{7, kPendingSlot}));  // its only copy was in the dead slot
  EXPECT_FALSE(table[1].pending());                 // 8: moved off slot 1
  EXPECT_NE(table[1].slot, 1u);
  EXPECT_EQ(table[2], (Mapping{100, kPendingSlot}));
  EXPECT_EQ(table[3].sector, 900u);  // rescued
  EXPECT_FALSE(table[3].pending());
  EXPECT_EQ(table[4].sector, 1500u);  // rescued
  EXPECT_EQ(test::ReadSector(engine_.get(), 8), eight);
  EXPECT_EQ(test::ReadSector(engine_.get(), 900), on_main);
  EXPECT_EQ(test::ReadSector(engine_.get(), 1500), on_main);
  const Health h = engine_->GetHealth();
  EXPECT_EQ(h.slots_bad, 2u);
  EXPECT_EQ(test::CounterValue(engine_->GetHealth(), Counter::kScrubUnreadable), 1u);
  EXPECT_EQ(test::CounterValue(engine_->GetHealth(), Counter::kScrubRescued), 3u);  // 900, 1500 and 8
  EXPECT_EQ(test::CounterValue(engine_->GetHealth(), Counter::kScrubSlotsRetired), 2u);
  EXPECT_EQ(test::CounterValue(engine_->GetHealth(), Counter::kScrubPasses), 1u);
  EXPECT_GE(test::CounterValue(engine_->GetHealth(), Counter::kScrubBytes), (kSectors - 3) * 512);
  scrub.Stop();
  ASSERT_TRUE(engine_->Close().ok());
  test::ExpectCheckClean(set_);
}

TEST_F(ScrubTest, VerbsRefuseWhatDoesNotApply) {
  Scrubber scrub(engine_.get(), ScrubOptions{});
  scrub.Launch();
  EXPECT_FALSE(scrub.Pause().ok());
  EXPECT_FALSE(scrub.Resume(std::nullopt).ok());
  EXPECT_FALSE(scrub.Cancel().ok());
  ASSERT_TRUE(scrub.Start(/*rate=*/1000).ok());  // 1 kB/s: it stays running
  EXPECT_FALSE(scrub.Start(std::nullopt).ok());
  EXPECT_FALSE(scrub.Resume(std::nullopt).ok());
  ASSERT_TRUE(scrub.Pause().ok());
  EXPECT_EQ(scrub.GetStatus().state.run, ScrubState::Run::kPaused);
  EXPECT_FALSE(scrub.Start(std::nullopt).ok());
  ASSERT_TRUE(scrub.Resume(/*rate=*/0).ok());
  EXPECT_EQ(WaitIdle(scrub).state.rate, 0u);
  ASSERT_TRUE(scrub.Start(/*rate=*/1000).ok());
  ASSERT_TRUE(scrub.Cancel().ok());
  const ScrubStatus st = scrub.GetStatus();
  EXPECT_EQ(st.state.run, ScrubState::Run::kIdle);
  EXPECT_EQ(st.state.position, 0u);
}

TEST_F(ScrubTest, ARunningPassResumesAtTheNextOpenWhereItWas) {
  {
    // 64 kB/s: a region (128 sectors) a second.
    Scrubber scrub(engine_.get(), ScrubOptions{});
    scrub.Launch();
    ASSERT_TRUE(scrub.Start(/*rate=*/64 * 1024).ok());
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (scrub.GetStatus().state.position < 256 && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(20));
    scrub.Stop();
  }
  ASSERT_TRUE(engine_->Close().ok());
  engine_ = set_.OpenOrDie();
  const ScrubState saved = engine_->saved_scrub_state();
  EXPECT_EQ(saved.run, ScrubState::Run::kRunning);
  EXPECT_GE(saved.position, 256u);
  EXPECT_LT(saved.position, kSectors);
  Scrubber scrub(engine_.get(), ScrubOptions{});
  EXPECT_EQ(scrub.GetStatus().state.position, saved.position);
  ASSERT_TRUE(scrub.Resume(std::nullopt).code() == Status::Code::kInvalidArgument);  // it runs already
  ASSERT_TRUE(scrub.Pause().ok());
  ASSERT_TRUE(scrub.Resume(/*rate=*/0).ok());
  scrub.Launch();
  const ScrubStatus st = WaitIdle(scrub);
  EXPECT_EQ(test::CounterValue(engine_->GetHealth(), Counter::kScrubPasses), 1u);
  // The second run read only what the first had not.
  EXPECT_LT(test::CounterValue(engine_->GetHealth(), Counter::kScrubBytes), 2 * kSectors * 512);
  EXPECT_EQ(st.state.run, ScrubState::Run::kIdle);
}

TEST_F(ScrubTest, AScheduleStartsAPassWhenTheLastIsOldEnough) {
  Scrubber scrub(engine_.get(), ScrubOptions{.default_rate = 0, .every = std::chrono::hours(1)});
  scrub.Launch();  // never scrubbed: a pass is due now
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (test::CounterValue(engine_->GetHealth(), Counter::kScrubPasses) == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(test::CounterValue(engine_->GetHealth(), Counter::kScrubPasses), 1u);
  std::this_thread::sleep_for(milliseconds(300));  // the next is an hour away
  const ScrubStatus st = scrub.GetStatus();
  EXPECT_EQ(st.state.run, ScrubState::Run::kIdle);
  EXPECT_EQ(test::CounterValue(engine_->GetHealth(), Counter::kScrubPasses), 1u);
}

TEST_F(ScrubTest, StopEndsAStepWithinOneRead) {
  // Every sector of MAIN answers after 200 ms: a region read sector by
  // sector would take 25 s.
  FaultRule slow = ReadRule(Device::kMain, 0, 0, 200);
  slow.sectors = {0, kSectors};
  ASSERT_TRUE(engine_->AddFaultRule(slow, &added_).ok());
  Scrubber scrub(engine_.get(), ScrubOptions{.slow = milliseconds(100)});
  scrub.Launch();
  ASSERT_TRUE(scrub.Start(/*rate=*/0).ok());
  std::this_thread::sleep_for(milliseconds(700));  // into the sector-by-sector reads
  const auto t = Clock::now();
  scrub.Stop();
  EXPECT_LT(Clock::now() - t, milliseconds(3000));  // one read (200 ms), not a region (25 s)
  engine_->ClearFaultRules();
}

}  // namespace
}  // namespace remapfs
