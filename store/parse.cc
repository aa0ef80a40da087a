#include "store/parse.h"

#include <charconv>
#include <cmath>

namespace remapfs {

namespace {
std::string Quoted(std::string_view what, std::string_view text) {
  return std::string(what) + " '" + std::string(text) + "'";
}
}  // namespace

std::optional<uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  return v;
}

Status ParseNumber(std::string_view what, std::string_view text, uint64_t min, uint64_t max, uint64_t* out) {
  auto v = ParseDecimal(text);
  if (!v || *v < min || *v > max) {
    return Status::InvalidArgument(Quoted(what, text) + " is not a whole number from " + std::to_string(min) +
                                   " to " + std::to_string(max));
  }
  *out = *v;
  return Status::OK();
}

Status ParseProbability(std::string_view what, std::string_view text, double* out) {
  double v = 0;
  // general: no hex floats; "inf" and "nan" parse, and are refused below.
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v, std::chars_format::general);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || !std::isfinite(v) || !(v > 0.0) ||
      v > 1.0) {
    return Status::InvalidArgument(Quoted(what, text) + " is not a probability in (0, 1], e.g. 0.25");
  }
  *out = v;
  return Status::OK();
}

std::optional<uint64_t> ParseByteSize(std::string_view s) {
  if (s.empty()) return std::nullopt;
  unsigned shift = 0;
  switch (s.back()) {
    case 'K': case 'k': shift = 10; break;
    case 'M': case 'm': shift = 20; break;
    case 'G': case 'g': shift = 30; break;
    case 'T': case 't': shift = 40; break;
    default: break;
  }
  if (shift != 0) s.remove_suffix(1);
  if (s.empty() || s.size() > 15) return std::nullopt;
  auto v = ParseDecimal(s);  // 15 digits cannot overflow
  if (!v || *v > (UINT64_MAX >> shift)) return std::nullopt;
  return *v << shift;
}

Status CheckFileName(std::string_view what, std::string_view name) {
  const char* why = nullptr;
  if (name.empty()) {
    why = "is empty";
  } else if (name == "." || name == "..") {
    why = "names a directory";
  } else if (name.size() > 255) {
    why = "is longer than 255 bytes";
  } else if (name.find('/') != std::string_view::npos) {
    why = "contains '/'";
  } else {
    for (char c : name) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) why = "contains a control character";
    }
  }
  if (!why) return Status::OK();
  return Status::InvalidArgument(Quoted(what, name) + " " + why + "; give a plain file name");
}

std::string EscapeMountOption(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == ',' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace remapfs
