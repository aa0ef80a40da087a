// Parsing and range checks of the values people type: remapctl's options and
// the daemon's -o options (tests/fuzz/fuzz_parse.cc fuzzes them). Every
// refusal is one line naming the option and what it accepts. Sector ranges,
// devices and fault ops are parsed in store/fault.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/status.h"

namespace remapfs {

// Decimal digits only (no sign, space, base prefix or fraction), at most
// UINT64_MAX. Not a general strtoull: "-1" must not wrap around to 2^64-1.
std::optional<uint64_t> ParseDecimal(std::string_view s);

// The value of option `what` (e.g. "--times"): a whole number from min to
// max. InvalidArgument saying so otherwise.
Status ParseNumber(std::string_view what, std::string_view text, uint64_t min, uint64_t max, uint64_t* out);

// A probability: a decimal fraction in (0, 1], e.g. "0.25", "1", "1e-3".
Status ParseProbability(std::string_view what, std::string_view text, double* out);

// A byte count: decimal digits with an optional binary suffix K, M, G or T
// (case-insensitive; 1K = 1024), e.g. "4096", "64M", "1g". Rejects empty
// text, signs, spaces, other suffixes, more than 15 digits and values that
// do not fit in 64 bits.
std::optional<uint64_t> ParseByteSize(std::string_view s);

// A name for a file in a directory: 1 to 255 bytes, neither "." nor "..",
// no '/', and no control character (they would break log lines and the
// mount table). InvalidArgument naming `what` otherwise.
Status CheckFileName(std::string_view what, std::string_view name);

// `value` for a FUSE -o option list: libfuse splits the list at commas and
// takes "\," for a comma in a value (and "\\" for a backslash).
std::string EscapeMountOption(std::string_view value);

}  // namespace remapfs
