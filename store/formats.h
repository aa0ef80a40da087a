// Formats storage admins already use, for `remapctl export` and `import`: a
// set's remapped and pending sectors as a badblocks list, a GNU ddrescue
// mapfile, a Linux md bad-block list, or remapfs's own JSON.
//
// Every format but JSON says "bad on MAIN" without telling remapped from
// pending: both are places where MAIN failed (a remapped sector's data is
// safe in its slot, but MAIN's sector is still the one that failed).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/remap_table.h"
#include "store/status.h"

namespace remapfs {

enum class ListFormat { kBadblocks, kDdrescue, kMd, kJson };
std::optional<ListFormat> ParseListFormat(std::string_view name);

// Consecutive sectors in one state (remapped ones in consecutive slots).
struct SectorRun {
  uint64_t first = 0;
  uint64_t count = 0;
  bool pending = false;
  uint32_t slot = 0;  // of `first`, when remapped
};
// The runs of `mappings` (in sector order).
std::vector<SectorRun> SectorRuns(const std::vector<Mapping>& mappings);

struct ExportOptions {
  uint32_t sector_size = 0;  // the set's
  uint64_t size = 0;         // MAIN's bytes
  std::string uuid;
  // badblocks: the block size the list counts in (badblocks -b, the
  // filesystem's block size for e2fsck -l); a block is listed when any of
  // its bytes is in a listed sector. 0: the set's sector size.
  uint64_t block_size = 0;
};
// InvalidArgument for a block size that is not a power of two from 512 to
// 1 MiB.
Status CheckBlockSize(uint64_t block_size);

// The text of `format` for `mappings` (sorted by sector):
// - badblocks: one block number a line (decimal), as `badblocks -o` writes;
// - ddrescue: a mapfile covering the whole image, `+` (finished) where MAIN
//   is good and `-` (bad sector) where it is not, positions and sizes in hex;
// - md: `sector length` lines in 512-byte sectors, at most 512 each, as
//   /sys/block/mdX/md/dev-*/bad_blocks reads;
// - json: {"uuid", "sector_size", "size", "runs": [{"first", "count",
//   "state", "slot"}]}.
std::string ExportList(ListFormat format, const std::vector<Mapping>& mappings, const ExportOptions& options);

struct ImportOptions {
  uint32_t sector_size = 0;  // the set's
  uint64_t size = 0;         // MAIN's bytes
  uint64_t block_size = 0;   // badblocks: the list's block size; 0: the sector size
  // ddrescue: the statuses that mark a bad area ('-' bad sector; '*'
  // non-trimmed and '/' non-scraped are failed areas not yet split).
  std::string ddrescue_statuses = "-";
};
// The set's sectors that `text` lists in `format`, as runs in sector order
// (overlaps joined): a sector is listed when any of its bytes is. pending
// is true for every run but a JSON "remapped" one. A malformed line, an
// area past the end of the image, or a JSON list of another sector size is
// refused with one line naming the line ("line 7: ...").
Status ParseList(ListFormat format, std::string_view text, const ImportOptions& options,
                 std::vector<SectorRun>* runs);

}  // namespace remapfs
