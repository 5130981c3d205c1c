#include "leakapp/request_params.h"

#include <initializer_list>
#include <iterator>
#include <optional>
#include <string_view>

#include "common/parse.h"

namespace leakapp {
namespace {

std::optional<ParamError> UnknownParameter(const QueryParams& query,
                                           std::initializer_list<std::string_view> known) {
  for (const auto& [name, value] : query) {
    bool found = false;
    for (auto k : known) found = found || name == k;
    if (!found) return ParamError{name, name + ": unknown parameter"};
  }
  return std::nullopt;
}

// Parses `name` into `*out` if present; the last occurrence wins.
std::optional<ParamError> IntParam(const QueryParams& query, const std::string& name, int64_t min,
                                   int64_t max, uint64_t* out) {
  auto [begin, end] = query.equal_range(name);
  if (begin == end) return std::nullopt;
  auto value = cppdiag::ParseInt(std::prev(end)->second, min, max);
  if (!value) return ParamError{name, name + ": " + value.error().message()};
  *out = static_cast<uint64_t>(*value);
  return std::nullopt;
}

std::string PatternNames() {
  std::string names;
  for (LeakPattern p : kAllLeakPatterns) {
    if (!names.empty()) names += ", ";
    names += LeakPatternName(p);
  }
  return names;
}

constexpr const char* kCrashKinds = "segv, abort, oom";

}  // namespace

std::variant<LeakParams, ParamError> ParseLeakParams(const QueryParams& query) {
  if (auto e = UnknownParameter(query, {"chunkKb", "intervalMs", "maxMb", "pattern"})) return *e;
  LeakParams p;
  if (auto e = IntParam(query, "chunkKb", 1, kMaxChunkKb, &p.chunk_kb)) return *e;
  if (auto e = IntParam(query, "intervalMs", 0, kMaxIntervalMs, &p.interval_ms)) return *e;
  if (auto e = IntParam(query, "maxMb", 0, kMaxMaxMb, &p.max_mb)) return *e;
  if (auto [begin, end] = query.equal_range("pattern"); begin != end) {
    const std::string& name = std::prev(end)->second;
    auto pattern = ParseLeakPattern(name);
    if (!pattern) {
      return ParamError{"pattern",
                        "pattern: unknown pattern '" + name + "' (one of " + PatternNames() + ")"};
    }
    p.pattern = *pattern;
  }
  return p;
}

std::variant<CrashKind, ParamError> ParseCrashParams(const QueryParams& query) {
  if (auto e = UnknownParameter(query, {"kind"})) return *e;
  auto [begin, end] = query.equal_range("kind");
  if (begin == end)
    return ParamError{"kind", "kind: required (one of " + std::string(kCrashKinds) + ")"};
  const std::string& name = std::prev(end)->second;
  auto kind = ParseCrashKind(name);
  if (!kind) {
    return ParamError{"kind", "kind: unknown crash kind '" + name + "' (one of " +
                                  std::string(kCrashKinds) + ")"};
  }
  return *kind;
}

std::variant<size_t, ParamError> ParseLogLinesParam(const QueryParams& query, size_t max) {
  if (auto e = UnknownParameter(query, {"lines"})) return *e;
  uint64_t lines = max < 100 ? max : 100;
  if (auto e = IntParam(query, "lines", 1, static_cast<int64_t>(max), &lines)) return *e;
  return static_cast<size_t>(lines);
}

}  // namespace leakapp
