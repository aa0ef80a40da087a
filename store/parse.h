// Parsing of the command-line values that remapctl takes and that are worth
// fuzzing on their own (see tests/fuzz/fuzz_parse.cc). Sector ranges, devices
// and fault ops are parsed in store/fault.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace remapfs {

// A byte count: decimal digits with an optional binary suffix K, M, G or T
// (case-insensitive; 1K = 1024), e.g. "4096", "64M", "1g". Rejects empty
// text, signs, spaces, other suffixes, more than 15 digits and values that
// do not fit in 64 bits.
std::optional<uint64_t> ParseByteSize(std::string_view s);

}  // namespace remapfs
