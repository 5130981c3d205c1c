#include "common/parse.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

namespace cppdiag {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Splits "1.5G" into 1.5 and "g". Fails on an empty or negative number.
Result<std::pair<double, std::string>> SplitNumber(std::string_view text, const char* what) {
  std::string_view s = Trim(text);
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) {
    return Error::Invalid("invalid " + std::string(what) + " '" + std::string(text) +
                          "': expected a non-negative number");
  }
  double value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + i, value);
  if (ec != std::errc() || ptr != s.data() + i || !std::isfinite(value)) {
    return Error::Invalid("invalid " + std::string(what) + " '" + std::string(text) + "'");
  }
  return std::pair{value, Lower(Trim(s.substr(i)))};
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  CPPDIAG_ASSIGN_OR_RETURN(auto parts, SplitNumber(text, "size"));
  auto [value, unit] = parts;
  double mult = 0;
  if (unit.empty() || unit == "b") {
    mult = 1;
  } else {
    static constexpr const char kUnits[] = "kmgtp";
    const char* pos = unit.size() <= 3 ? std::strchr(kUnits, unit[0]) : nullptr;
    std::string rest = unit.substr(1);
    if (pos == nullptr || !(rest.empty() || rest == "b" || rest == "ib")) {
      return Error::Invalid("invalid size '" + std::string(text) +
                            "': unit must be one of B, K, M, G, T, P (binary multiples)");
    }
    mult = std::ldexp(1.0, 10 * static_cast<int>(pos - kUnits + 1));
  }
  double bytes = value * mult;
  if (bytes >= 18446744073709551615.0) {
    return Error::Invalid("invalid size '" + std::string(text) + "': too large");
  }
  if (mult == 1 && value != std::floor(value)) {
    return Error::Invalid("invalid size '" + std::string(text) + "': bytes must be whole");
  }
  return static_cast<uint64_t>(bytes);
}

Result<std::chrono::nanoseconds> ParseDuration(std::string_view text) {
  CPPDIAG_ASSIGN_OR_RETURN(auto parts, SplitNumber(text, "duration"));
  auto [value, unit] = parts;
  double ns_per_unit = 0;
  if (unit.empty() || unit == "s")
    ns_per_unit = 1e9;
  else if (unit == "ms")
    ns_per_unit = 1e6;
  else if (unit == "us")
    ns_per_unit = 1e3;
  else if (unit == "ns")
    ns_per_unit = 1;
  else if (unit == "m" || unit == "min")
    ns_per_unit = 60e9;
  else if (unit == "h")
    ns_per_unit = 3600e9;
  else {
    return Error::Invalid("invalid duration '" + std::string(text) +
                          "': unit must be one of ns, us, ms, s, m, h");
  }
  double ns = value * ns_per_unit;
  if (ns > 9.2e18) return Error::Invalid("invalid duration '" + std::string(text) + "': too long");
  return std::chrono::nanoseconds(static_cast<int64_t>(ns));
}

Result<double> ParsePercent(std::string_view text) {
  std::string_view s = Trim(text);
  if (!s.empty() && s.back() == '%') s.remove_suffix(1);
  CPPDIAG_ASSIGN_OR_RETURN(auto parts, SplitNumber(s, "percentage"));
  if (!parts.second.empty() || parts.first <= 0 || parts.first > 100) {
    return Error::Invalid("invalid percentage '" + std::string(text) +
                          "': expected a number in (0, 100], e.g. 85 or 85%");
  }
  return parts.first;
}

Result<SizeOrPercent> ParseSizeOrPercent(std::string_view text) {
  SizeOrPercent out;
  if (Trim(text).ends_with('%')) {
    CPPDIAG_ASSIGN_OR_RETURN(out.percent, ParsePercent(text));
    out.is_percent = true;
    return out;
  }
  auto bytes = ParseSize(text);
  if (!bytes) {
    return Error::Invalid(bytes.error().message() + " (or a percentage such as 75%)");
  }
  out.bytes = *bytes;
  return out;
}

Result<int64_t> ParseInt(std::string_view text, int64_t min, int64_t max) {
  std::string_view s = Trim(text);
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
    return Error::Invalid("invalid integer '" + std::string(text) + "'");
  }
  if (value < min || value > max) {
    return Error::Invalid("'" + std::string(text) + "' is out of range [" + std::to_string(min) +
                          ", " + std::to_string(max) + "]");
  }
  return value;
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

}  // namespace cppdiag
