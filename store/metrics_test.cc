// remapctl health's bits, the metrics text and MetricsFile on a real
// directory. The text is checked with a real Prometheus parser in
// tests/integration/health_metrics.sh.
#include "store/metrics.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/testharness.h"

namespace remapfs {
namespace {

Health Fine() {
  Health h;
  h.slots_total = h.slots_free = 100;
  return h;
}

TEST(HealthBitsTest, EachConditionHasItsBit) {
  EXPECT_EQ(HealthBits(Fine()), 0);
  Health h = Fine();
  h.remapped_sectors = 1;
  h.slots_free = h.slots_used = 50;
  EXPECT_EQ(HealthBits(h), kHealthDegraded);
  h = Fine();
  h.pending_sectors = 2;
  EXPECT_EQ(HealthBits(h), kHealthDegraded | kHealthPending);
  h = Fine();
  h.slots_bad = 1;
  h.slots_free = 99;
  EXPECT_EQ(HealthBits(h), kHealthDegraded);
  h = Fine();
  h.slots_free = 9;  // under a tenth
  EXPECT_EQ(HealthBits(h), kHealthSpareLow);
  h.slots_free = 10;
  EXPECT_EQ(HealthBits(h), 0);
  h.slots_free = 0;
  EXPECT_EQ(HealthBits(h), kHealthSpareLow | kHealthSpareExhausted);
  h.slots_quarantined = 1;  // a slot will be free after the next commit
  EXPECT_EQ(HealthBits(h), kHealthSpareLow);
  h = Fine();
  h.store_error = "commit: disk full";
  EXPECT_EQ(HealthBits(h), kHealthStoreFailing);
  h = Fine();
  h.sync_error = "fdatasync: EIO";
  EXPECT_EQ(HealthBits(h), kHealthStoreFailing);
  h = Fine();
  h.was_clean = false;
  EXPECT_EQ(HealthBits(h), kHealthUncleanStop);
  // Bits 0 and 1 are remapctl's own exit codes; the rest fit in a byte.
  for (const auto& [bit, name] : HealthBitNames()) {
    EXPECT_GE(bit, 4) << name;
    EXPECT_LT(bit, 256) << name;
  }
}

SetStatus Example() {
  SetStatus st;
  st.uuid = "1234-abcd";
  st.sector_size = 4096;
  st.size = 1 << 20;
  st.health = Fine();
  st.health.remapped_sectors = 3;
  st.health.pending_sectors = 1;
  st.health.slots_free = 97;
  st.health.slots_used = 3;
  st.health.counters = {{"remaps", 5}, {"scrub_unreadable", 1}};
  return st;
}

TEST(MetricsTextTest, NamesTheSmartAttributesAndEveryCounter) {
  const std::string text = MetricsText(Example());
  for (const char* line : {
           "remapfs_remapped_sectors{uuid=\"1234-abcd\"} 3\n",
           "remapfs_pending_sectors{uuid=\"1234-abcd\"} 1\n",
           "# TYPE remapfs_remaps_total counter\n",
           "remapfs_remaps_total{uuid=\"1234-abcd\"} 5\n",
           "remapfs_scrub_unreadable_total{uuid=\"1234-abcd\"} 1\n",
           "remapfs_slots{uuid=\"1234-abcd\",state=\"free\"} 97\n",
           "remapfs_spare_available_ratio{uuid=\"1234-abcd\"} 0.97\n",
           "remapfs_state{uuid=\"1234-abcd\",state=\"degraded\"} 1\n",
           "remapfs_state{uuid=\"1234-abcd\",state=\"ok\"} 0\n",
           "remapfs_health_condition{uuid=\"1234-abcd\",condition=\"pending\"} 1\n",
           "remapfs_health_condition{uuid=\"1234-abcd\",condition=\"unclean-stop\"} 0\n",
           "remapfs_scrub_state{uuid=\"1234-abcd\",state=\"idle\"} 1\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "in:\n" << text;
  }
}

TEST(MetricsTextTest, EscapesLabelValues) {
  SetStatus st = Example();
  st.uuid = "a\"b\\c\nd";
  EXPECT_NE(MetricsText(st).find("{uuid=\"a\\\"b\\\\c\\nd\"}"), std::string::npos);
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(MetricsFileTest, WritesAtomicallyAndLeavesNoTemporaryFile) {
  test::TempDir dir;
  const std::string path = dir.File("set.prom");
  ASSERT_TRUE(MetricsFile::Probe(path).ok());
  EXPECT_FALSE(std::filesystem::exists(path)) << "a probe writes nothing";
  int calls = 0;
  {
    MetricsFile file(path, std::chrono::seconds(3600), [&] {
      ++calls;
      return Example();
    });
    ASSERT_TRUE(file.Start().ok());
    EXPECT_EQ(Slurp(path), MetricsText(Example()));
    file.Stop();  // a last write
    file.Stop();
  }
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::others_read);
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST(MetricsFileTest, RefusesWhatCannotBeWritten) {
  test::TempDir dir;
  EXPECT_FALSE(MetricsFile::Probe(dir.File("no/such/dir/set.prom")).ok());
  const Status s = MetricsFile::Probe(dir.path());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("is a directory"), std::string::npos) << s.message();
  MetricsFile file(dir.File("no/set.prom"), std::chrono::seconds(1), [] { return Example(); });
  EXPECT_FALSE(file.Start().ok());
}

}  // namespace
}  // namespace remapfs
