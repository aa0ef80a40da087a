#include "store/disk_map.h"

#include <fmt/format.h>

#include <algorithm>

namespace remapfs {

namespace {

struct Look {
  const char* glyph;
  const char* ansi;  // colour code
  const char* svg;   // fill
  const char* name;
};

constexpr Look kLooks[] = {
    {"░", "32", "#3aa845", "normal"},
    {"▒", "35", "#a848c8", "fault rule"},
    {"▓", "33", "#e8b820", "remapped"},
    {"█", "31", "#d82828", "pending"},
};
constexpr Look kScrub = {"▶", "1;36", "#2090e0", "scrub position"};

const Look& LookOf(CellState s) { return kLooks[static_cast<size_t>(s)]; }

std::string Bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string Scale(const DiskMap& m) {
  return fmt::format("{} sectors of {} bytes ({}); one cell: {} sector{} ({})", m.sector_count, m.sector_size,
                     Bytes(m.sector_count * m.sector_size), m.sectors_per_cell, m.sectors_per_cell == 1 ? "" : "s",
                     Bytes(m.sectors_per_cell * m.sector_size));
}

std::string Count(const Look& look, const DiskMap& m) {
  const std::string_view name = look.name;
  if (name == "remapped") return fmt::format("{} ({})", name, m.remapped);
  if (name == "pending") return fmt::format("{} ({})", name, m.pending);
  if (name == "fault rule") return fmt::format("{} ({})", name, m.fault_rules);
  return std::string(name);
}

std::string EscapeXml(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

}  // namespace

DiskMap BuildDiskMap(uint64_t sector_count, uint32_t sector_size, size_t max_cells,
                     const std::vector<Mapping>& mappings, const std::vector<FaultRule>& rules,
                     std::optional<uint64_t> scrub_position) {
  DiskMap m;
  m.sector_count = sector_count;
  m.sector_size = sector_size;
  const uint64_t cells = std::max<uint64_t>(1, std::min<uint64_t>(max_cells, sector_count));
  m.sectors_per_cell = std::max<uint64_t>(1, (sector_count + cells - 1) / cells);
  m.cells.assign(std::max<uint64_t>(1, (sector_count + m.sectors_per_cell - 1) / m.sectors_per_cell),
                 CellState::kNormal);
  auto mark = [&](uint64_t cell, CellState s) {
    if (cell < m.cells.size()) m.cells[cell] = std::max(m.cells[cell], s);
  };
  for (const FaultRule& r : rules) {
    if (r.device != Device::kMain || r.sectors.count == 0 || r.sectors.first >= sector_count) continue;
    ++m.fault_rules;
    const uint64_t last = std::min(sector_count, r.sectors.end()) - 1;
    for (uint64_t c = r.sectors.first / m.sectors_per_cell; c <= last / m.sectors_per_cell; ++c) {
      mark(c, CellState::kFault);
    }
  }
  for (const Mapping& e : mappings) {
    if (e.pending()) {
      ++m.pending;
    } else {
      ++m.remapped;
    }
    mark(e.sector / m.sectors_per_cell, e.pending() ? CellState::kPending : CellState::kRemapped);
  }
  if (scrub_position && *scrub_position < sector_count) m.scrub_cell = *scrub_position / m.sectors_per_cell;
  return m;
}

std::string DiskMapText(const DiskMap& m, size_t width, bool colour) {
  width = std::max<size_t>(1, width);
  const int digits = static_cast<int>(std::to_string(m.sector_count).size());
  std::string out;
  auto paint = [&](const Look& look) {
    if (colour) {
      out += fmt::format("\x1b[{}m{}\x1b[0m", look.ansi, look.glyph);
    } else {
      out += look.glyph;
    }
  };
  for (size_t row = 0; row * width < m.cells.size(); ++row) {
    out += fmt::format("{:>{}} ", row * width * m.sectors_per_cell, digits);
    for (size_t c = row * width; c < std::min(m.cells.size(), (row + 1) * width); ++c) {
      paint(m.scrub_cell == c ? kScrub : LookOf(m.cells[c]));
    }
    out += "\n";
  }
  out += "\n";
  for (const Look& look : kLooks) {
    paint(look);
    out += " " + Count(look, m) + "  ";
  }
  if (m.scrub_cell) {
    paint(kScrub);
    out += fmt::format(" scrub at sector {}..", *m.scrub_cell * m.sectors_per_cell);
  }
  out += "\n" + Scale(m) + "\n";
  return out;
}

std::string DiskMapSvg(const DiskMap& m, size_t width, const std::string& title) {
  width = std::max<size_t>(1, width);
  constexpr int kCell = 10, kMargin = 10, kTitle = 24, kLegend = 56;
  const size_t rows = (m.cells.size() + width - 1) / width;
  const int w = std::max<int>(static_cast<int>(width) * kCell + 2 * kMargin, 560);
  const int h = kTitle + static_cast<int>(rows) * kCell + kLegend + kMargin;
  std::string out = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"#ffffff\"/>\n"
      "<text x=\"{2}\" y=\"17\" font-family=\"sans-serif\" font-size=\"13\">{3}</text>\n",
      w, h, kMargin, EscapeXml(title));
  // One rect a run of cells of one look in a row.
  for (size_t row = 0; row < rows; ++row) {
    const size_t end = std::min(m.cells.size(), (row + 1) * width);
    for (size_t c = row * width; c < end;) {
      const Look& look = m.scrub_cell == c ? kScrub : LookOf(m.cells[c]);
      size_t n = 1;
      while (c + n < end && m.scrub_cell != c + n && &LookOf(m.cells[c + n]) == &look) ++n;
      out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>sectors {}..</title></rect>\n",
                         kMargin + static_cast<int>(c - row * width) * kCell, kTitle + static_cast<int>(row) * kCell,
                         static_cast<int>(n) * kCell, kCell, look.svg, c * m.sectors_per_cell);
      c += n;
    }
  }
  int x = kMargin;
  const int y = kTitle + static_cast<int>(rows) * kCell + 16;
  std::vector<std::pair<const Look*, std::string>> legend;
  for (const Look& look : kLooks) legend.emplace_back(&look, Count(look, m));
  if (m.scrub_cell) legend.emplace_back(&kScrub, kScrub.name);
  for (const auto& [look, text] : legend) {
    out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>", x, y, kCell, kCell, look->svg);
    out += fmt::format("<text x=\"{}\" y=\"{}\" font-family=\"sans-serif\" font-size=\"11\">{}</text>\n",
                       x + kCell + 4, y + 9, EscapeXml(text));
    x += kCell + 12 + static_cast<int>(text.size()) * 7;
  }
  out += fmt::format("<text x=\"{}\" y=\"{}\" font-family=\"sans-serif\" font-size=\"11\">{}</text>\n", kMargin,
                     y + 28, EscapeXml(Scale(m)));
  out += "</svg>\n";
  return out;
}

}  // namespace remapfs
