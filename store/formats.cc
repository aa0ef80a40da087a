#include "store/formats.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>

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

namespace {

// A listed area, in bytes, and the line that listed it.
struct Area {
  uint64_t begin = 0, end = 0;
  bool pending = true;
  size_t line = 0;
};

Status LineError(size_t line, const std::string& what) {
  return Status::InvalidArgument("line " + std::to_string(line) + ": " + what);
}

// A whole token as an unsigned number: decimal, or (ddrescue) also 0x-hex.
bool ParseU64(std::string_view tok, bool hex_too, uint64_t* out) {
  int base = 10;
  if (hex_too && tok.size() > 2 && tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X')) {
    tok.remove_prefix(2);
    base = 16;
  }
  if (tok.empty()) return false;
  const auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), *out, base);
  return ec == std::errc() && end == tok.data() + tok.size();
}

std::vector<std::string_view> Tokens(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const size_t b = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > b) out.push_back(line.substr(b, i - b));
  }
  return out;
}

// Calls fn(line number, tokens) for each line with tokens and no leading '#'.
template <typename Fn>
Status ForEachLine(std::string_view text, Fn&& fn) {
  size_t number = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++number;
    const std::vector<std::string_view> tokens = Tokens(line);
    if (tokens.empty() || tokens[0][0] == '#') continue;
    Status s = fn(number, tokens);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status ParseBadblocks(std::string_view text, const ImportOptions& o, std::vector<Area>* areas) {
  const uint64_t bs = o.block_size ? o.block_size : o.sector_size;
  return ForEachLine(text, [&](size_t line, const std::vector<std::string_view>& t) {
    uint64_t block = 0;
    if (t.size() != 1 || !ParseU64(t[0], false, &block)) return LineError(line, "expected a block number");
    if (block > UINT64_MAX / bs - 1) return LineError(line, "block " + std::string(t[0]) + " is out of range");
    areas->push_back(Area{block * bs, (block + 1) * bs, true, line});
    return Status::OK();
  });
}

Status ParseMd(std::string_view text, std::vector<Area>* areas) {
  return ForEachLine(text, [&](size_t line, const std::vector<std::string_view>& t) {
    uint64_t sector = 0, length = 0;
    if (t.size() != 2 || !ParseU64(t[0], false, &sector) || !ParseU64(t[1], false, &length) || length == 0) {
      return LineError(line, "expected 'SECTOR LENGTH' (512-byte sectors, length at least 1)");
    }
    if (sector > UINT64_MAX / 512 - length) return LineError(line, "sector " + std::string(t[0]) + " is out of range");
    areas->push_back(Area{sector * 512, (sector + length) * 512, true, line});
    return Status::OK();
  });
}

Status ParseDdrescue(std::string_view text, const ImportOptions& o, std::vector<Area>* areas) {
  bool seen_status_line = false;
  uint64_t prev_end = 0;
  Status s = ForEachLine(text, [&](size_t line, const std::vector<std::string_view>& t) {
    if (!seen_status_line) {
      // current_pos current_status [current_pass]
      uint64_t pos = 0;
      if (t.size() < 2 || t.size() > 3 || !ParseU64(t[0], true, &pos) || t[1].size() != 1 ||
          std::string_view("?*/-FGL+").find(t[1][0]) == std::string_view::npos) {
        return LineError(line, "expected the mapfile's status line 'POS STATUS [PASS]'");
      }
      seen_status_line = true;
      return Status::OK();
    }
    uint64_t pos = 0, size = 0;
    if (t.size() != 3 || !ParseU64(t[0], true, &pos) || !ParseU64(t[1], true, &size) || t[2].size() != 1 ||
        std::string_view("?*/-+").find(t[2][0]) == std::string_view::npos) {
      return LineError(line, "expected 'POS SIZE STATUS' (STATUS one of ? * / - +)");
    }
    if (size == 0 || pos > UINT64_MAX - size) return LineError(line, "the area's size is 0 or out of range");
    if (pos < prev_end) return LineError(line, "the area overlaps or comes before the one above it");
    prev_end = pos + size;
    if (o.ddrescue_statuses.find(t[2][0]) != std::string::npos) areas->push_back(Area{pos, pos + size, true, line});
    return Status::OK();
  });
  if (s.ok() && !seen_status_line) s = Status::InvalidArgument("not a ddrescue mapfile: no status line");
  return s;
}

Status ParseJson(std::string_view text, const ImportOptions& o, std::vector<Area>* areas) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("not JSON (as remapctl export --format json writes)");
  if (!j.is_object() || !j.contains("sector_size") || !j["sector_size"].is_number_unsigned() || !j.contains("runs") ||
      !j["runs"].is_array()) {
    return Status::InvalidArgument("expected an object with 'sector_size' and 'runs', as remapctl export writes");
  }
  if (j["sector_size"] != o.sector_size) {
    return Status::InvalidArgument("the list is of " + j["sector_size"].dump() + "-byte sectors; this set's are " +
                                   std::to_string(o.sector_size));
  }
  size_t i = 0;
  for (const auto& r : j["runs"]) {
    ++i;
    if (!r.is_object() || !r.contains("first") || !r["first"].is_number_unsigned() || !r.contains("count") ||
        !r["count"].is_number_unsigned() || r["count"] == 0 || !r.contains("state") ||
        (r["state"] != "pending" && r["state"] != "remapped")) {
      return Status::InvalidArgument("run " + std::to_string(i) +
                                     ": expected 'first', 'count' (at least 1) and 'state' (pending or remapped)");
    }
    const uint64_t first = r["first"], count = r["count"];
    if (first > UINT64_MAX / o.sector_size - count) {
      return Status::InvalidArgument("run " + std::to_string(i) + ": out of range");
    }
    areas->push_back(Area{first * o.sector_size, (first + count) * o.sector_size, r["state"] == "pending", i});
  }
  return Status::OK();
}

}  // namespace

Status ParseList(ListFormat format, std::string_view text, const ImportOptions& o, std::vector<SectorRun>* runs) {
  std::vector<Area> areas;
  Status s;
  switch (format) {
    case ListFormat::kBadblocks: s = ParseBadblocks(text, o, &areas); break;
    case ListFormat::kDdrescue: s = ParseDdrescue(text, o, &areas); break;
    case ListFormat::kMd: s = ParseMd(text, &areas); break;
    case ListFormat::kJson: s = ParseJson(text, o, &areas); break;
  }
  if (!s.ok()) return s;
  const std::string where = format == ListFormat::kJson ? "run " : "line ";
  for (const Area& a : areas) {
    if (a.end > o.size) {
      return Status::InvalidArgument(where + std::to_string(a.line) + ": bytes " + std::to_string(a.begin) + " to " +
                                     std::to_string(a.end) + " are past the end of the image (" +
                                     std::to_string(o.size) + " bytes)");
    }
  }
  std::stable_sort(areas.begin(), areas.end(), [](const Area& a, const Area& b) { return a.begin < b.begin; });
  runs->clear();
  for (const Area& a : areas) {
    const uint64_t first = a.begin / o.sector_size, end = (a.end + o.sector_size - 1) / o.sector_size;
    SectorRun* last = runs->empty() ? nullptr : &runs->back();
    if (last && first <= last->first + last->count) {
      if (last->pending != a.pending && first < last->first + last->count) {
        return Status::InvalidArgument(where + std::to_string(a.line) +
                                       ": lists as remapped a sector listed as pending, or the other way round");
      }
      if (last->pending == a.pending) {
        last->count = std::max(last->first + last->count, end) - last->first;
        continue;
      }
    }
    runs->push_back(SectorRun{first, end - first, a.pending, 0});
  }
  return Status::OK();
}

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
