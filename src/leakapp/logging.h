// leakapp's log: spdlog to stdout, one line per event,
//   2024-05-01T10:00:00.123+00:00 [info] [tid 4242] Allocated 1.00 MB this round, Total: 37.00 MB
// flushed at every info (or higher) message, so nothing is lost when the
// process crashes right after. SPDLOG_LEVEL=debug shows probe requests too.
// The last kRecentLogLines lines at info or above are also kept in memory,
// for the page's log (GET /logs).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace leakapp {

inline constexpr size_t kRecentLogLines = 200;

// Installs the stdout logger as spdlog's default. Call once, early in main.
void SetUpLogging();

// The last `limit` lines logged at info or above, oldest first, formatted as
// on stdout; empty before SetUpLogging(). Thread-safe.
std::vector<std::string> RecentLogLines(size_t limit = kRecentLogLines);

}  // namespace leakapp
