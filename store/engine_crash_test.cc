// Crash-order tests, focused cases: the durability contract of DESIGN.md
// (durability 1-4) at the moments that matter, under a simulated power loss.
// The engine is dropped without an orderly stop (Engine::AbandonForTest, as
// `kill -9`) and MemEnv::PowerCut drops or tears every MAIN and SPARE write
// not followed by a sync; the DB is a real SQLite file. Commits happen only
// on Flush, so each case is deterministic. The random campaigns, where the
// DB and its WAL lose unsynced writes too, are in engine_powercut_test.cc.
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/testharness.h"

namespace remapfs {
namespace {

constexpr uint64_t kBlock = 512;  // MemEnv's tear granularity

// --- focused cases, with commits only on Flush ---

EngineOptions FlushOnly() {
  EngineOptions o;
  o.commit_interval = std::chrono::hours(1);
  return o;
}


// A small set (two slots) whose engine can be crashed and reopened.
struct Focused {
  explicit Focused(bool tear_in) : tear(tear_in) {}

  void Crash(std::unique_ptr<Engine>& e) {
    e->AbandonForTest();
    e.reset();
    set.env.PowerCut(/*seed=*/tear ? 5 : 6, tear);
    ASSERT_NO_FATAL_FAILURE(test::ExpectCheckClean(set));
    Status s = set.Open(&e, FlushOnly());
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_FALSE(e->GetHealth().was_clean);
  }

  const bool tear;
  test::QuietLogs quiet;
  test::MemSet set{/*main_size=*/64 * 4096, /*slots=*/2, /*sector_size=*/4096};
};

// Runs body once with unsynced writes dropped, once with them torn.
template <typename Body>
void DropAndTear(Body body) {
  for (bool tear : {false, true}) {
    SCOPED_TRACE(tear ? "power cut tears unsynced writes" : "power cut drops unsynced writes");
    Focused f(tear);
    body(f);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// A write that failed on MAIN landed in a slot; without a flush neither the
// mapping nor (perhaps) the slot's data survives, and the sector reads as it
// was flushed. MAIN was never changed by the failed write.
TEST(EngineCrash, UnflushedRemapIsForgotten) {
  DropAndTear([](Focused& f) {
    const std::string v1 = test::Pattern(4096, 1), v2 = test::Pattern(4096, 2);
    auto e = f.set.OpenOrDie(FlushOnly());
    ASSERT_TRUE(e->Write(5 * 4096, 4096, v1.data()).ok());
    ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 5).ok());
    ASSERT_TRUE(e->Flush().ok());
    ASSERT_TRUE(e->Write(5 * 4096, 4096, v2.data()).ok());
    ASSERT_EQ(e->List(0, 64), (std::vector<Mapping>{{5, 0}}));
    ASSERT_TRUE(test::ReadSector(e.get(), 5) == v2);
    ASSERT_NO_FATAL_FAILURE(f.Crash(e));
    EXPECT_TRUE(e->List(0, 64).empty()) << "a mapping was committed without a flush";
    EXPECT_TRUE(test::ReadSector(e.get(), 5) == v1) << "sector 5 lost its flushed content";
    EXPECT_EQ(e->ListFaultRules().size(), 1u) << "the flushed fault rule is lost";
  });
}

// Flushed, the remap survives, and a later unflushed write to the slot
// reads as either version, block by block.
TEST(EngineCrash, FlushedRemapSurvives) {
  DropAndTear([](Focused& f) {
    const std::string v1 = test::Pattern(4096, 1), v2 = test::Pattern(4096, 2), v3 = test::Pattern(4096, 3);
    auto e = f.set.OpenOrDie(FlushOnly());
    ASSERT_TRUE(e->Write(5 * 4096, 4096, v1.data()).ok());
    ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 5).ok());
    ASSERT_TRUE(e->Write(5 * 4096, 4096, v2.data()).ok());
    ASSERT_TRUE(e->Flush().ok());
    ASSERT_TRUE(e->Write(5 * 4096, 4096, v3.data()).ok());
    ASSERT_NO_FATAL_FAILURE(f.Crash(e));
    EXPECT_EQ(e->List(0, 64), (std::vector<Mapping>{{5, 0}}));
    const std::string got = test::ReadSector(e.get(), 5);
    for (uint64_t b = 0; b < 4096 / kBlock; ++b) {
      const std::string_view block(got.data() + b * kBlock, kBlock);
      EXPECT_TRUE(block == std::string_view(v2).substr(b * kBlock, kBlock) ||
                  (f.tear && block == std::string_view(v3).substr(b * kBlock, kBlock)))
          << "block " << b;
    }
  });
}

// An unremap copies the slot back to MAIN and frees the slot, but the slot
// is not reused before the commit that frees it is durable: after a crash
// before that commit the old mapping is back and must still find its data.
TEST(EngineCrash, FreedSlotIsNotReusedBeforeTheUnremapIsDurable) {
  DropAndTear([](Focused& f) {
    const std::string v5 = test::Pattern(4096, 5), v9 = test::Pattern(4096, 9), v10 = test::Pattern(4096, 10);
    auto e = f.set.OpenOrDie(FlushOnly());
    ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 5).ok());
    ASSERT_TRUE(e->Write(5 * 4096, 4096, v5.data()).ok());
    ASSERT_TRUE(e->Flush().ok());
    ASSERT_TRUE(e->RemoveFaultRule(e->ListFaultRules().at(0).id).ok());
    ASSERT_TRUE(e->Unremap(5).ok());
    EXPECT_EQ(e->GetHealth().slots_quarantined, 1u);
    // Slot 0 waits for a commit; slot 1 is the only free one.
    ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 9, 2).ok());
    ASSERT_TRUE(e->Write(9 * 4096, 4096, v9.data()).ok());
    EXPECT_EQ(e->List(0, 64), (std::vector<Mapping>{{9, 1}}));
    Status s = e->Write(10 * 4096, 4096, v10.data());
    EXPECT_EQ(s.ToErrno(), EIO) << "slot 0 was reused before its unremap was durable: " << s.ToString();
    ASSERT_NO_FATAL_FAILURE(f.Crash(e));
    EXPECT_EQ(e->List(0, 64), (std::vector<Mapping>{{5, 0}}));
    EXPECT_TRUE(test::ReadSector(e.get(), 5) == v5) << "slot 0 no longer holds sector 5";
    EXPECT_TRUE(test::ReadSector(e.get(), 9) == std::string(4096, '\0')) << "sector 9 kept an unflushed write";
    EXPECT_TRUE(test::ReadSector(e.get(), 10) == std::string(4096, '\0')) << "sector 10 kept a failed write";
  });
}

// Once flushed, the unremap is durable, the slot is free again, and the
// sector reads from MAIN after a crash.
TEST(EngineCrash, FlushedUnremapSurvives) {
  DropAndTear([](Focused& f) {
    const std::string v5 = test::Pattern(4096, 5);
    auto e = f.set.OpenOrDie(FlushOnly());
    ASSERT_TRUE(test::AddWriteFault(e.get(), Device::kMain, 5).ok());
    ASSERT_TRUE(e->Write(5 * 4096, 4096, v5.data()).ok());
    ASSERT_TRUE(e->Flush().ok());
    ASSERT_TRUE(e->RemoveFaultRule(e->ListFaultRules().at(0).id).ok());
    ASSERT_TRUE(e->Unremap(5).ok());
    ASSERT_TRUE(e->Flush().ok());
    EXPECT_EQ(e->GetHealth().slots_quarantined, 0u);
    EXPECT_EQ(e->GetHealth().slots_free, 2u);
    ASSERT_NO_FATAL_FAILURE(f.Crash(e));
    EXPECT_TRUE(e->List(0, 64).empty());
    EXPECT_TRUE(test::ReadSector(e.get(), 5) == v5) << "the copy back to MAIN was not durable";
  });
}

}  // namespace
}  // namespace remapfs
