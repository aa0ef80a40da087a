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

ImportOptions In(uint32_t sector_size, uint64_t block_size = 0) {
  ImportOptions o;
  o.sector_size = sector_size;
  o.size = 256 * uint64_t{sector_size};
  o.block_size = block_size;
  return o;
}

std::string Runs(const std::vector<SectorRun>& runs) {
  std::string out;
  for (const SectorRun& r : runs) {
    out += std::to_string(r.first) + "+" + std::to_string(r.count) + (r.pending ? "p " : "r ");
  }
  return out;
}

std::string Parsed(ListFormat f, std::string_view text, const ImportOptions& o) {
  std::vector<SectorRun> runs;
  const Status s = ParseList(f, text, o, &runs);
  return s.ok() ? Runs(runs) : s.message();
}

TEST(FormatsTest, EachExportParsesBackToTheSameSectors) {
  for (ListFormat f : {ListFormat::kBadblocks, ListFormat::kDdrescue, ListFormat::kMd, ListFormat::kJson}) {
    const std::string text = ExportList(f, Table(), Options(512));
    const std::string want = f == ListFormat::kJson ? "10+4r 14+1p 100+2r " : "10+5p 100+2p ";
    EXPECT_EQ(Parsed(f, text, In(512)), want) << text;
  }
}

TEST(FormatsTest, ParsesWhatTheToolsWrite) {
  // badblocks -b 1024 over 4096-byte sectors: blocks 4-7 are sector 1.
  EXPECT_EQ(Parsed(ListFormat::kBadblocks, "4\n7\n\n  9 \n", In(4096, 1024)), "1+2p ");
  EXPECT_EQ(Parsed(ListFormat::kMd, "8 8\n16 1\n", In(4096)), "1+2p ");
  const std::string map =
      "# Mapfile. Created by GNU ddrescue version 1.27\n"
      "# current_pos  current_status  current_pass\n"
      "0x00010000     ?               1\n"
      "#      pos        size  status\n"
      "0x00000000  0x00000400  +\n"
      "0x00000400  0x00000200  -\n"   // sector 2
      "0x00000600  0x00000400  *\n"   // 3-4
      "0x00000A00  0x00000200  /\n"   // 5
      "0x00000C00  0x0001F400  ?\n";
  EXPECT_EQ(Parsed(ListFormat::kDdrescue, map, In(512)), "2+1p ");
  ImportOptions all = In(512);
  all.ddrescue_statuses = "-*/";
  EXPECT_EQ(Parsed(ListFormat::kDdrescue, map, all), "2+4p ");
}

TEST(FormatsTest, RefusesAMalformedListNamingTheLine) {
  EXPECT_EQ(Parsed(ListFormat::kBadblocks, "1\n2\nthree\n", In(512)), "line 3: expected a block number");
  EXPECT_EQ(Parsed(ListFormat::kBadblocks, "-1\n", In(512)), "line 1: expected a block number");
  EXPECT_EQ(Parsed(ListFormat::kBadblocks, "256\n", In(512)),
            "line 1: bytes 131072 to 131584 are past the end of the image (131072 bytes)");
  EXPECT_EQ(Parsed(ListFormat::kMd, "8\n", In(512)),
            "line 1: expected 'SECTOR LENGTH' (512-byte sectors, length at least 1)");
  EXPECT_EQ(Parsed(ListFormat::kMd, "8 0\n", In(512)),
            "line 1: expected 'SECTOR LENGTH' (512-byte sectors, length at least 1)");
  EXPECT_EQ(Parsed(ListFormat::kDdrescue, "0x0 0x200 -\n", In(512)),
            "line 1: expected the mapfile's status line 'POS STATUS [PASS]'");
  EXPECT_EQ(Parsed(ListFormat::kDdrescue, "0 +\n0x400 0x200 -\n0x0 0x200 +\n", In(512)),
            "line 3: the area overlaps or comes before the one above it");
  EXPECT_EQ(Parsed(ListFormat::kDdrescue, "0 +\n0x0 0x200 x\n", In(512)),
            "line 2: expected 'POS SIZE STATUS' (STATUS one of ? * / - +)");
  EXPECT_EQ(Parsed(ListFormat::kDdrescue, "# only comments\n", In(512)), "not a ddrescue mapfile: no status line");
  EXPECT_EQ(Parsed(ListFormat::kJson, "{\"sector_size\": 4096, \"runs\": []}", In(512)),
            "the list is of 4096-byte sectors; this set's are 512");
  EXPECT_EQ(Parsed(ListFormat::kJson, "[1,2", In(512)), "not JSON (as remapctl export --format json writes)");
  EXPECT_EQ(Parsed(ListFormat::kJson,
                   "{\"sector_size\": 512, \"runs\": [{\"first\": 1, \"count\": 2, \"state\": \"pending\"},"
                   "{\"first\": 2, \"count\": 1, \"state\": \"remapped\"}]}",
                   In(512)),
            "run 2: lists as remapped a sector listed as pending, or the other way round");
}

}  // namespace
}  // namespace remapfs
