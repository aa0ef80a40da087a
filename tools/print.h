// remapctl's human output: tables and lines made from the JSON forms that
// --json prints (store/control_protocol.h), so that both say the same.
#pragma once

#include <string>
#include <vector>

#include "store/control_protocol.h"

namespace remapfs {

// A small aligned table on stdout: the first row is the header.
void PrintTable(const std::vector<std::vector<std::string>>& rows);

// Each takes the JSON form of its verb's result.
void PrintStatus(const ControlJson& status);
void PrintMappings(const ControlJson& mappings);
void PrintFaultRules(const ControlJson& rules);
void PrintEvents(const ControlJson& events);
void PrintCheck(const ControlJson& check);
void PrintScrub(const ControlJson& scrub);

// The scrub's state in one line: "running, 42.1% (main), limit 50.0 MB/s,
// 48.2 MB/s, ETA 1m12s, last full pass never".
std::string ScrubLine(const ControlJson& scrub);
// A progress bar, "[#####.........]", for fraction 0 to 1.
std::string Bar(double fraction);
// "45s", "3m05s", "2h10m".
std::string Duration(double seconds);

}  // namespace remapfs
