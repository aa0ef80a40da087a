// fuzz_formats: remapctl import's parsers (ParseList) of badblocks lists,
// ddrescue mapfiles, md lists and JSON exports. The first byte picks the
// format and the set's sector size; the rest is the file. What a parser
// accepts must keep its promises: runs in order, not empty, not touching
// another run of the same state, inside the image; and exporting them in the
// same format (ExportList) must parse back to the same runs.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "store/formats.h"

namespace {

using remapfs::ListFormat;
using remapfs::Mapping;
using remapfs::SectorRun;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_formats: %s\n", what);
  std::abort();
}

bool Same(const std::vector<SectorRun>& a, const std::vector<SectorRun>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first || a[i].count != b[i].count || a[i].pending != b[i].pending) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const ListFormat formats[] = {ListFormat::kBadblocks, ListFormat::kDdrescue, ListFormat::kMd, ListFormat::kJson};
  const ListFormat format = formats[data[0] % 4];
  remapfs::ImportOptions o;
  o.sector_size = (data[0] & 4) ? 4096 : 512;
  o.size = uint64_t{1} << 20;  // 256 or 2048 sectors
  if (data[0] & 8) o.ddrescue_statuses = "-*/";
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<SectorRun> runs;
  if (!remapfs::ParseList(format, text, o, &runs).ok()) return 0;

  const uint64_t sectors = o.size / o.sector_size;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (runs[i].count == 0) Fail("an empty run");
    if (runs[i].first + runs[i].count > sectors) Fail("a run past the end of the image");
    if (i > 0) {
      const SectorRun& prev = runs[i - 1];
      if (runs[i].first < prev.first + prev.count) Fail("runs overlap or are out of order");
      if (runs[i].first == prev.first + prev.count && runs[i].pending == prev.pending) Fail("touching runs not joined");
    }
    if (format != ListFormat::kJson && !runs[i].pending) Fail("a remapped run from a format without states");
  }

  // Export the runs (remapped ones in consecutive slots) and parse them back.
  std::vector<Mapping> mappings;
  uint32_t slot = 0;
  for (const SectorRun& r : runs) {
    for (uint64_t s = r.first; s < r.first + r.count; ++s) {
      mappings.push_back(Mapping{s, r.pending ? remapfs::kPendingSlot : slot++});
    }
  }
  remapfs::ExportOptions eo;
  eo.sector_size = o.sector_size;
  eo.size = o.size;
  eo.uuid = "fuzz";
  std::vector<SectorRun> back;
  remapfs::ImportOptions io = o;
  io.block_size = 0;
  io.ddrescue_statuses = "-";
  if (!remapfs::ParseList(format, remapfs::ExportList(format, mappings, eo), io, &back).ok()) {
    Fail("an export does not parse");
  }
  // Formats without states join touching runs of either state.
  std::vector<SectorRun> want;
  for (const SectorRun& r : runs) {
    if (format != ListFormat::kJson && !want.empty() && want.back().first + want.back().count == r.first) {
      want.back().count += r.count;
    } else {
      want.push_back(r);
    }
  }
  if (!Same(want, back)) Fail("export then import changed the runs");
  return 0;
}
