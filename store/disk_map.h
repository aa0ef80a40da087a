// DiskMap: a picture of a set's image for `remapctl map`, as ddrescueview
// draws a rescue: the image cut into cells of equal runs of sectors, each
// showing the worst state of its sectors, drawn as text (Unicode blocks,
// colour on a terminal) or as an SVG.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/fault.h"
#include "store/remap_table.h"

namespace remapfs {

// Worst last: a cell shows the worst state of its sectors.
enum class CellState : uint8_t { kNormal, kFault, kRemapped, kPending };

struct DiskMap {
  uint64_t sector_count = 0;
  uint32_t sector_size = 0;
  uint64_t sectors_per_cell = 1;
  std::vector<CellState> cells;
  std::optional<size_t> scrub_cell;  // where a running or paused scrub is
  uint64_t remapped = 0, pending = 0, fault_rules = 0;
};

// At most max_cells cells (at least 1) over sector_count sectors; fault
// rules on MAIN mark the sectors they cover (rules on SPARE address slots
// and are not drawn); scrub_position: a scrub's next sector, if any.
DiskMap BuildDiskMap(uint64_t sector_count, uint32_t sector_size, size_t max_cells,
                     const std::vector<Mapping>& mappings, const std::vector<FaultRule>& rules,
                     std::optional<uint64_t> scrub_position);

// Rows of `width` cells, each headed by its first sector, then a legend
// and the scale. colour: ANSI colours (a terminal).
std::string DiskMapText(const DiskMap& map, size_t width, bool colour);
// The same as an SVG drawing of `width` cells a row, with a title, the
// legend and the scale.
std::string DiskMapSvg(const DiskMap& map, size_t width, const std::string& title);

}  // namespace remapfs
