#include "tools/print.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <iostream>

namespace remapfs {

namespace {

using json = ControlJson;

// A cell: a string as it is, null as "-", anything else as JSON.
std::string Str(const json& j) { return j.is_string() ? j.get<std::string>() : j.is_null() ? "-" : j.dump(); }

std::string LocalTime(int64_t us) {
  const time_t secs = static_cast<time_t>(us / 1000000);
  char when[32];
  std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", std::localtime(&secs));
  return when;
}

}  // namespace

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

void PrintStatus(const json& st) {
  std::vector<std::vector<std::string>> rows = {{"field", "value"}};
  for (const char* k : {"uuid", "state", "size", "sector_size", "remapped_sectors", "pending_sectors"}) {
    if (st.contains(k)) rows.push_back({k, Str(st[k])});
  }
  for (auto& [k, v] : st["slots"].items()) rows.push_back({"slots_" + k, Str(v)});
  rows.push_back({"was_clean", Str(st["was_clean"])});
  for (const char* k : {"sync_error", "store_error", "previous_store_error"}) {
    if (st.contains(k) && !st[k].get<std::string>().empty()) rows.push_back({k, Str(st[k])});
  }
  for (auto& [k, v] : st["counters"].items()) rows.push_back({k, Str(v)});
  rows.push_back({"scrub", ScrubLine(st["scrub"])});
  for (const char* k : {"main", "spare", "db"}) rows.push_back({k, Str(st.value(k, json(nullptr)))});
  const int64_t pid = st.value("pid", int64_t{0});
  if (pid == 0) {
    rows.push_back({"daemon", "none (offline; paths as last opened)"});
  } else {
    const int64_t started = st["started_us"];
    const double up = static_cast<double>(NowUnixUs() - started) / 1e6;
    rows.push_back({"daemon", fmt::format("pid {}, mounted at {}, up {} (since {})", pid,
                                          st["mountpoint"].get<std::string>(), Duration(up), LocalTime(started))});
  }
  PrintTable(rows);
}

std::string Bar(double fraction) {
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * kWidth);
  return "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "]";
}

std::string Duration(double seconds) {
  const auto s = static_cast<uint64_t>(seconds + 0.5);
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string(s / 60 % 60) + "m";
}

std::string ScrubLine(const json& scrub) {
  const std::string state = scrub["state"];
  const double limit = scrub["rate_limit"].get<double>() / 1e6;
  const std::string rate_limit = limit > 0 ? fmt::format("limit {:.1f} MB/s", limit) : "no rate limit";
  const int64_t last = scrub["last_pass_us"];
  const std::string last_pass = "last full pass " + (last ? LocalTime(last) : std::string("never"));
  if (state == "idle") return "idle, " + last_pass;
  std::string line = fmt::format("{}, {:.1f}% ({}), {}", state, scrub["percent"].get<double>(),
                                 scrub["phase"].get<std::string>(), rate_limit);
  if (state == "running") {
    line += fmt::format(", {:.1f} MB/s", scrub["bytes_per_second"].get<double>() / 1e6);
    if (!scrub["eta_seconds"].is_null()) line += ", ETA " + Duration(scrub["eta_seconds"].get<double>());
  }
  if (!scrub["error"].get<std::string>().empty()) line += "; paused by an error: " + scrub["error"].get<std::string>();
  return line + ", " + last_pass;
}

void PrintScrub(const json& scrub) { std::cout << "scrub: " << ScrubLine(scrub) << "\n"; }

// One row per range of consecutive sectors in one state (and, remapped, in
// consecutive slots).
void PrintMappings(const json& mappings) {
  std::vector<std::vector<std::string>> rows = {{"sectors", "count", "state", "slots"}};
  auto span = [](uint64_t first, uint64_t count) {
    return count == 1 ? std::to_string(first) : std::to_string(first) + "-" + std::to_string(first + count - 1);
  };
  for (size_t i = 0; i < mappings.size();) {
    const json& m = mappings[i];
    const uint64_t first = m["sector"];
    const bool pending = m["slot"].is_null();
    size_t n = 1;
    for (; i + n < mappings.size(); ++n) {
      const json& next = mappings[i + n];
      if (next["sector"].get<uint64_t>() != first + n || next["slot"].is_null() != pending) break;
      if (!pending && next["slot"].get<uint64_t>() != m["slot"].get<uint64_t>() + n) break;
    }
    rows.push_back({span(first, n), std::to_string(n), Str(m["state"]), pending ? "-" : span(m["slot"], n)});
    i += n;
  }
  PrintTable(rows);
}

void PrintFaultRules(const json& rules) {
  std::vector<std::vector<std::string>> rows = {{"id", "device", "sectors", "op", "times", "probability", "seed", "delay_ms"}};
  for (const auto& r : rules) {
    const uint64_t first = r["first"], count = r["count"];
    rows.push_back({Str(r["id"]), Str(r["device"]), std::to_string(first) + "-" + std::to_string(first + count - 1),
                    Str(r["op"]), r["times"] == 0 ? "always" : Str(r["times"]), Str(r["probability"]), Str(r["seed"]),
                    Str(r["delay_ms"])});
  }
  PrintTable(rows);
}

void PrintEvents(const json& events) {
  std::vector<std::vector<std::string>> rows = {{"time", "event", "sector", "slot", "detail"}};
  for (const auto& e : events) {
    rows.push_back({LocalTime(e["time_us"]), Str(e["kind"]), Str(e["sector"]), Str(e["slot"]), Str(e["detail"])});
  }
  PrintTable(rows);
}

void PrintCheck(const json& check) {
  for (const auto& p : check["problems"]) std::cout << "problem: " << p.get<std::string>() << "\n";
  if (check["problems"].empty()) std::cout << "ok: spare header, DB and table are consistent\n";
}

}  // namespace remapfs
