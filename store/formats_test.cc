// remapctl export's formats on a small table: the runs, each format's text,
// and the block arithmetic of badblocks lists. Real consumers read them in
// tests/integration/export.sh (ddrescuelog, e2fsck -l).
#include "store/formats.h"

#include <nlohmann/json.hpp>

#include "tests/support/testharness.h"

namespace remapfs {
namespace {

// Sectors 10-13 in slots 0-3, 14 pending, 100 in slot 9, 101 in slot 4.
std::vector<Mapping> Table() {
  return {{10, 0}, {11, 1}, {12, 2}, {13, 3}, {14, kPendingSlot}, {100, 9}, {101, 4}};
}

ExportOptions Options(uint32_t sector_size, uint64_t block_size = 0) {
  ExportOptions o;
  o.sector_size = sector_size;
  o.size = 256 * uint64_t{sector_size};
  o.uuid = "u";
  o.block_size = block_size;
  return o;
}

TEST(FormatsTest, RunsJoinConsecutiveSectorsInOneStateAndConsecutiveSlots) {
  const std::vector<SectorRun> runs = SectorRuns(Table());
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[0].first, 10u);
  EXPECT_EQ(runs[0].count, 4u);
  EXPECT_TRUE(runs[1].pending);
  EXPECT_EQ(runs[2].slot, 9u);
  EXPECT_EQ(runs[3].slot, 4u) << "101's slot does not follow 100's";
}

TEST(FormatsTest, BadblocksCountsInItsBlockSize) {
  EXPECT_EQ(ExportList(ListFormat::kBadblocks, {{3, 0}, {4, kPendingSlot}}, Options(4096)), "3\n4\n");
  // 1 KiB blocks: four per sector.
  EXPECT_EQ(ExportList(ListFormat::kBadblocks, {{3, 0}}, Options(4096, 1024)), "12\n13\n14\n15\n");
  // 4 KiB blocks over 512-byte sectors: a block with any bad sector, once.
  EXPECT_EQ(ExportList(ListFormat::kBadblocks, {{7, 0}, {8, 1}, {30, kPendingSlot}}, Options(512, 4096)),
            "0\n1\n3\n");
  EXPECT_EQ(ExportList(ListFormat::kBadblocks, {}, Options(512)), "");
}

TEST(FormatsTest, DdrescueCoversTheImageWithJoinedBadAreas) {
  const std::string map = ExportList(ListFormat::kDdrescue, Table(), Options(512));
  const std::string areas = map.substr(map.find("#      pos"));
  EXPECT_EQ(areas,
            "#      pos        size  status\n"
            "0x00000000  0x00001400  +\n"
            "0x00001400  0x00000a00  -\n"  // 10-14: remapped and pending, one area
            "0x00001e00  0x0000aa00  +\n"
            "0x0000c800  0x00000400  -\n"  // 100-101 (byte 51200 = 0xc800)
            "0x0000cc00  0x00013400  +\n");
  EXPECT_NE(map.find("\n0x00000000     +               1\n"), std::string::npos) << map;
  const std::string clean = ExportList(ListFormat::kDdrescue, {}, Options(512));
  EXPECT_NE(clean.find("0x00000000  0x00020000  +\n"), std::string::npos) << clean;
}

TEST(FormatsTest, MdListsIn512ByteSectorsAtMost512APiece) {
  EXPECT_EQ(ExportList(ListFormat::kMd, Table(), Options(4096)), "80 32\n112 8\n800 8\n808 8\n");
  std::vector<Mapping> many;
  for (uint32_t i = 0; i < 100; ++i) many.push_back({i, i});
  EXPECT_EQ(ExportList(ListFormat::kMd, many, Options(4096)), "0 512\n512 288\n");
}

TEST(FormatsTest, JsonKeepsStatesAndSlots) {
  const nlohmann::json j = nlohmann::json::parse(ExportList(ListFormat::kJson, Table(), Options(512)));
  EXPECT_EQ(j["sector_size"], 512);
  ASSERT_EQ(j["runs"].size(), 4u);
  EXPECT_EQ(j["runs"][1]["state"], "pending");
  EXPECT_TRUE(j["runs"][1]["slot"].is_null());
  EXPECT_EQ(j["runs"][2]["slot"], 9);
}

TEST(FormatsTest, NamesAndBlockSizes) {
  EXPECT_EQ(ParseListFormat("ddrescue"), ListFormat::kDdrescue);
  EXPECT_FALSE(ParseListFormat("DDRESCUE"));
  EXPECT_TRUE(CheckBlockSize(512).ok());
  EXPECT_TRUE(CheckBlockSize(1 << 20).ok());
  for (uint64_t bad : {0, 256, 1000, 3072, 2 << 20}) EXPECT_FALSE(CheckBlockSize(bad).ok()) << bad;
}

}  // namespace
}  // namespace remapfs
