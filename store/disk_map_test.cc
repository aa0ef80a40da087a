// remapctl map's picture: which cell shows what, the text and the SVG. The
// SVG is rendered for real (rsvg-convert) in tests/integration/map.sh.
#include "store/disk_map.h"

#include "tests/support/testharness.h"

namespace remapfs {
namespace {

FaultRule MainRule(uint64_t first, uint64_t count) {
  FaultRule r;
  r.device = Device::kMain;
  r.sectors = {first, count};
  return r;
}

TEST(DiskMapTest, EachCellShowsTheWorstStateOfItsSectors) {
  // 100 sectors in at most 10 cells: 10 a cell.
  FaultRule spare_rule = MainRule(0, 100);
  spare_rule.device = Device::kSpare;  // slots: not drawn
  const DiskMap m = BuildDiskMap(100, 512, 10, {{5, 0}, {7, kPendingSlot}, {15, 1}, {99, kPendingSlot}},
                                 {MainRule(14, 20), spare_rule}, 42);
  EXPECT_EQ(m.sectors_per_cell, 10u);
  ASSERT_EQ(m.cells.size(), 10u);
  EXPECT_EQ(m.cells[0], CellState::kPending) << "pending beats remapped";
  EXPECT_EQ(m.cells[1], CellState::kRemapped) << "remapped beats a fault rule";
  EXPECT_EQ(m.cells[2], CellState::kFault);
  EXPECT_EQ(m.cells[3], CellState::kFault) << "the rule ends at sector 33";
  EXPECT_EQ(m.cells[4], CellState::kNormal);
  EXPECT_EQ(m.cells[9], CellState::kPending);
  EXPECT_EQ(m.scrub_cell, 4u);
  EXPECT_EQ(m.remapped, 2u);
  EXPECT_EQ(m.pending, 2u);
  EXPECT_EQ(m.fault_rules, 1u);
}

TEST(DiskMapTest, SmallImagesGetACellASectorAndBigOnesRoundUp) {
  EXPECT_EQ(BuildDiskMap(5, 512, 1024, {}, {}, std::nullopt).cells.size(), 5u);
  const DiskMap big = BuildDiskMap(1001, 512, 10, {{1000, 0}}, {}, std::nullopt);
  EXPECT_EQ(big.sectors_per_cell, 101u);
  EXPECT_EQ(big.cells.size(), 10u);
  EXPECT_EQ(big.cells[9], CellState::kRemapped);
  EXPECT_FALSE(big.scrub_cell);
}

TEST(DiskMapTest, TextHasRowsALegendAndTheScale) {
  const DiskMap m = BuildDiskMap(16, 4096, 16, {{1, 0}, {2, kPendingSlot}}, {MainRule(3, 1)}, 8);
  const std::string text = DiskMapText(m, 8, /*colour=*/false);
  EXPECT_EQ(text.substr(0, text.find("\n\n")), " 0 ░▓█▒░░░░\n 8 ▶░░░░░░░");
  EXPECT_NE(text.find("▓ remapped (1)"), std::string::npos) << text;
  EXPECT_NE(text.find("█ pending (1)"), std::string::npos) << text;
  EXPECT_NE(text.find("▶ scrub at sector 8.."), std::string::npos) << text;
  EXPECT_NE(text.find("16 sectors of 4096 bytes (64.0 KiB); one cell: 1 sector (4.0 KiB)"), std::string::npos) << text;
  EXPECT_NE(DiskMapText(m, 8, /*colour=*/true).find("\x1b[31m█\x1b[0m"), std::string::npos);
}

TEST(DiskMapTest, SvgDrawsRunsOfCellsAndEscapesTheTitle) {
  const DiskMap m = BuildDiskMap(16, 4096, 16, {{1, 0}, {2, kPendingSlot}}, {}, std::nullopt);
  const std::string svg = DiskMapSvg(m, 8, "a <set> & more");
  EXPECT_NE(svg.find("a &lt;set&gt; &amp; more"), std::string::npos);
  // Row 0: normal, remapped, pending, 5 normal; row 1: 8 normal in one rect.
  EXPECT_NE(svg.find("<rect x=\"40\" y=\"24\" width=\"50\" height=\"10\" fill=\"#3aa845\">"), std::string::npos) << svg;
  EXPECT_NE(svg.find("<rect x=\"10\" y=\"34\" width=\"80\" height=\"10\" fill=\"#3aa845\">"), std::string::npos) << svg;
  EXPECT_NE(svg.find("fill=\"#d82828\""), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
}

}  // namespace
}  // namespace remapfs
