// fuzz_parse: the parsers of command-line and control-channel values.
// The whole input is the text given to ParseSectorRange, ParseDevice,
// ParseFaultOp, ParseByteSize (remapctl's --spare-size), ParseDecimal,
// ParseNumber, ParseProbability, CheckFileName and EscapeMountOption; the same bytes,
// read as binary fields, make a FaultRule for FaultRule::Validate. Every
// accepted value is checked against what the parser promises (and a byte
// size against an independent 128-bit computation); a broken promise aborts.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstring>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "store/fault.h"
#include "store/parse.h"

namespace {

using remapfs::Device;
using remapfs::FaultOp;
using remapfs::FaultRule;
using remapfs::SectorRange;

[[noreturn]] void Fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "fuzz_parse: %s (input '%.*s')\n", what, static_cast<int>(input.size()), input.data());
  std::abort();
}

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return !s.empty();
}

void CheckSectorRange(std::string_view s) {
  const std::optional<SectorRange> r = remapfs::ParseSectorRange(s);
  if (!r) {
    // A plain number below UINT64_MAX with at most 19 digits always parses.
    if (AllDigits(s) && s.size() <= 19) Fail("ParseSectorRange refused a plain number", s);
    return;
  }
  if (r->count == 0) Fail("ParseSectorRange returned an empty range", s);
  if (r->first > UINT64_MAX - r->count) Fail("ParseSectorRange returned an overflowing range", s);
  // Both written forms of the range parse back to it.
  const std::string counted = std::to_string(r->first) + "+" + std::to_string(r->count);
  const std::string inclusive = std::to_string(r->first) + "-" + std::to_string(r->end() - 1);
  for (const std::string& text : {counted, inclusive}) {
    auto back = remapfs::ParseSectorRange(text);
    if (!back || back->first != r->first || back->count != r->count) Fail("ParseSectorRange does not round-trip", s);
  }
}

void CheckNames(std::string_view s) {
  if (auto d = remapfs::ParseDevice(s); d && remapfs::DeviceName(*d) != s) Fail("ParseDevice/DeviceName", s);
  if (auto op = remapfs::ParseFaultOp(s); op && remapfs::FaultOpName(*op) != s) Fail("ParseFaultOp/FaultOpName", s);
}

void CheckByteSize(std::string_view s) {
  const std::optional<uint64_t> got = remapfs::ParseByteSize(s);
  // The reference: digits, one optional binary suffix, at most 15 digits,
  // computed in 128 bits.
  std::string_view digits = s;
  unsigned shift = 0;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'K': case 'k': shift = 10; break;
      case 'M': case 'm': shift = 20; break;
      case 'G': case 'g': shift = 30; break;
      case 'T': case 't': shift = 40; break;
      default: break;
    }
    if (shift != 0) digits.remove_suffix(1);
  }
  std::optional<uint64_t> want;
  if (AllDigits(digits) && digits.size() <= 15) {
    unsigned __int128 v = 0;
    for (char c : digits) v = v * 10 + static_cast<unsigned>(c - '0');
    v <<= shift;
    if (v <= UINT64_MAX) want = static_cast<uint64_t>(v);
  }
  if (got != want) Fail("ParseByteSize disagrees with the reference", s);
}

// ParseDecimal and ParseNumber against an independent digit-by-digit
// computation (in 128 bits, so that an overflow shows); ParseProbability's
// promise; CheckFileName's rules; EscapeMountOption leaves no bare comma.
void CheckNumbersAndNames(std::string_view s) {
  std::optional<unsigned __int128> want;
  if (AllDigits(s)) {
    unsigned __int128 v = 0;
    for (char c : s) {
      v = v * 10 + static_cast<unsigned>(c - '0');
      if (v > UINT64_MAX) break;
    }
    if (v <= UINT64_MAX) want = v;
  }
  const std::optional<uint64_t> got = remapfs::ParseDecimal(s);
  if (got.has_value() != want.has_value() || (got && *got != static_cast<uint64_t>(*want))) {
    Fail("ParseDecimal disagrees with the reference", s);
  }
  uint64_t n = 0;
  const remapfs::Status ns = remapfs::ParseNumber("--n", s, 1, 1000, &n);
  if (ns.ok() != (got && *got >= 1 && *got <= 1000) || (ns.ok() && n != *got)) Fail("ParseNumber's range", s);
  double p = 0;
  if (remapfs::ParseProbability("--p", s, &p).ok() && !(p > 0.0 && p <= 1.0)) {
    Fail("ParseProbability accepted a value outside (0, 1]", s);
  }
  if (remapfs::CheckFileName("name", s).ok()) {
    if (s.empty() || s.size() > 255 || s == "." || s == ".." || s.find('/') != std::string_view::npos) {
      Fail("CheckFileName accepted a bad name", s);
    }
    for (char c : s) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) Fail("CheckFileName accepted a control character", s);
    }
  }
  const std::string escaped = remapfs::EscapeMountOption(s);
  for (size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] == '\\') {
      ++i;  // an escaped character
    } else if (escaped[i] == ',') {
      Fail("EscapeMountOption left a bare comma", s);
    }
  }
}

void CheckValidate(const uint8_t* data, size_t size) {
  FuzzedDataProvider p(data, size);
  FaultRule r;
  r.device = p.ConsumeBool() ? Device::kSpare : Device::kMain;
  r.op = static_cast<FaultOp>(p.ConsumeIntegralInRange<int>(0, 2));
  r.sectors.first = p.ConsumeIntegral<uint64_t>();
  r.sectors.count = p.ConsumeIntegral<uint64_t>();
  r.times = p.ConsumeIntegral<uint64_t>();
  uint64_t bits = p.ConsumeIntegral<uint64_t>();
  std::memcpy(&r.probability, &bits, sizeof(bits));  // any double: NaN, inf, subnormal
  r.seed = p.ConsumeIntegral<uint64_t>();
  r.delay_ms = p.ConsumeIntegral<uint32_t>();
  const uint64_t sectors = p.ConsumeIntegral<uint64_t>();
  const remapfs::Status s = r.Validate(sectors);
  (void)r.ToString();
  (void)s.ToString();
  if (!s.ok()) {
    if (s.code() != remapfs::Status::Code::kInvalidArgument || s.message().empty()) Fail("Validate's refusal", "");
    return;
  }
  if (r.sectors.count == 0 || r.sectors.first >= sectors || r.sectors.count > sectors - r.sectors.first) {
    Fail("Validate accepted sectors outside the device", "");
  }
  if (!(r.probability > 0.0 && r.probability <= 1.0)) Fail("Validate accepted a probability outside (0, 1]", "");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view s(reinterpret_cast<const char*>(data), size);
  CheckSectorRange(s);
  CheckNames(s);
  CheckByteSize(s);
  CheckNumbersAndNames(s);
  CheckValidate(data, size);
  return 0;
}
