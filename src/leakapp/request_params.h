// Validation of the query parameters of leakapp's endpoints. A bad value is
// reported with the parameter's name, which the HTTP layer returns as
//   400 {"error": "chunkKb: invalid integer 'abc'", "parameter": "chunkKb"}
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <variant>

#include "leakapp/crash.h"
#include "leakapp/leak_engine.h"

namespace leakapp {

// The decoded query string, every occurrence of a key (query_string.h).
using QueryParams = std::multimap<std::string, std::string>;

struct ParamError {
  std::string parameter;
  std::string message;  // starts with the parameter's name
};

// Ranges accepted by /triggerMemoryLeak.
inline constexpr int64_t kMaxChunkKb = 1 << 20;         // 1 GiB per round
inline constexpr int64_t kMaxIntervalMs = 3600 * 1000;  // one hour
inline constexpr int64_t kMaxMaxMb = int64_t{1} << 30;  // 1 PiB, i.e. no practical cap

// /triggerMemoryLeak: chunkKb [1, kMaxChunkKb] (1024), intervalMs
// [0, kMaxIntervalMs] (100), maxMb [0, kMaxMaxMb] (0 = no cap), pattern
// (vector). Any other parameter is an error, so a typo does not go unnoticed.
std::variant<LeakParams, ParamError> ParseLeakParams(const QueryParams& query);

// /crash: kind (required): segv, abort or oom. Any other parameter is an error.
std::variant<CrashKind, ParamError> ParseCrashParams(const QueryParams& query);

// /logs: lines [1, max] (100, or `max` if smaller). Any other parameter is an
// error.
std::variant<size_t, ParamError> ParseLogLinesParam(const QueryParams& query, size_t max);

}  // namespace leakapp
