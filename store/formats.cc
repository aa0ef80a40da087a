#include "store/formats.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace remapfs {

namespace {

// md keeps a bad range in entries of at most this many 512-byte sectors.
constexpr uint64_t kMdMaxLength = 512;

std::string Badblocks(const std::vector<SectorRun>& runs, const ExportOptions& o) {
  const uint64_t bs = o.block_size ? o.block_size : o.sector_size;
  std::string out;
  std::optional<uint64_t> last;  // runs are sorted: a block shared by two runs is listed once
  for (const SectorRun& r : runs) {
    const uint64_t begin = r.first * o.sector_size, end = (r.first + r.count) * o.sector_size;
    for (uint64_t b = std::max(begin / bs, last ? *last + 1 : 0); b < (end + bs - 1) / bs; ++b) {
      out += fmt::format("{}\n", b);
      last = b;
    }
  }
  return out;
}

std::string Ddrescue(const std::vector<SectorRun>& runs, const ExportOptions& o) {
  std::string out = fmt::format(
      "# Mapfile. Created by remapctl export (remapfs set {})\n"
      "# '-': sectors where MAIN failed (remapped or pending); '+': MAIN is good\n"
      "# current_pos  current_status  current_pass\n"
      "0x00000000     +               1\n"
      "#      pos        size  status\n",
      o.uuid);
  auto area = [&](uint64_t pos, uint64_t size, char status) {
    if (size) out += fmt::format("{:#010x}  {:#010x}  {}\n", pos, size, status);
  };
  // Bad areas in bytes, touching runs joined (a pending sector next to a
  // remapped one is one bad area).
  std::vector<std::pair<uint64_t, uint64_t>> bad;
  for (const SectorRun& r : runs) {
    const uint64_t begin = r.first * o.sector_size, end = std::min(o.size, (r.first + r.count) * o.sector_size);
    if (!bad.empty() && bad.back().second == begin) {
      bad.back().second = end;
    } else {
      bad.emplace_back(begin, end);
    }
  }
  uint64_t pos = 0;
  for (const auto& [begin, end] : bad) {
    area(pos, begin - pos, '+');
    area(begin, end - begin, '-');
    pos = end;
  }
  area(pos, o.size - pos, '+');
  return out;
}

std::string Md(const std::vector<SectorRun>& runs, const ExportOptions& o) {
  std::string out;
  const uint64_t per = o.sector_size / 512;
  for (const SectorRun& r : runs) {
    for (uint64_t at = r.first * per, end = (r.first + r.count) * per; at < end;) {
      const uint64_t n = std::min(kMdMaxLength, end - at);
      out += fmt::format("{} {}\n", at, n);
      at += n;
    }
  }
  return out;
}

std::string Json(const std::vector<SectorRun>& runs, const ExportOptions& o) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const SectorRun& r : runs) {
    list.push_back({{"first", r.first},
                    {"count", r.count},
                    {"state", r.pending ? "pending" : "remapped"},
                    {"slot", r.pending ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.slot)}});
  }
  nlohmann::ordered_json j{{"uuid", o.uuid}, {"sector_size", o.sector_size}, {"size", o.size}, {"runs", list}};
  return j.dump(2) + "\n";
}

}  // namespace

std::optional<ListFormat> ParseListFormat(std::string_view name) {
  if (name == "badblocks") return ListFormat::kBadblocks;
  if (name == "ddrescue") return ListFormat::kDdrescue;
  if (name == "md") return ListFormat::kMd;
  if (name == "json") return ListFormat::kJson;
  return std::nullopt;
}

std::vector<SectorRun> SectorRuns(const std::vector<Mapping>& mappings) {
  std::vector<SectorRun> runs;
  for (const Mapping& m : mappings) {
    SectorRun* last = runs.empty() ? nullptr : &runs.back();
    const bool follows = last && last->first + last->count == m.sector && last->pending == m.pending() &&
                         (m.pending() || last->slot + last->count == m.slot);
    if (follows) {
      ++last->count;
    } else {
      runs.push_back(SectorRun{m.sector, 1, m.pending(), m.pending() ? 0 : m.slot});
    }
  }
  return runs;
}

Status CheckBlockSize(uint64_t block_size) {
  if (block_size < 512 || block_size > (1 << 20) || (block_size & (block_size - 1)) != 0) {
    return Status::InvalidArgument("--block-size " + std::to_string(block_size) +
                                   " is not a power of two from 512 to 1048576");
  }
  return Status::OK();
}

std::string ExportList(ListFormat format, const std::vector<Mapping>& mappings, const ExportOptions& options) {
  const std::vector<SectorRun> runs = SectorRuns(mappings);
  switch (format) {
    case ListFormat::kBadblocks: return Badblocks(runs, options);
    case ListFormat::kDdrescue: return Ddrescue(runs, options);
    case ListFormat::kMd: return Md(runs, options);
    case ListFormat::kJson: return Json(runs, options);
  }
  return "";
}

}  // namespace remapfs
