// leakapp's log: spdlog to stdout, one line per event,
//   2024-05-01T10:00:00.123+00:00 [info] [tid 4242] Allocated 1.00 MB this round, Total: 37.00 MB
// flushed at every info (or higher) message, so nothing is lost when the
// process crashes right after. SPDLOG_LEVEL=debug shows probe requests too.
#pragma once

namespace leakapp {

// Installs the stdout logger as spdlog's default. Call once, early in main.
void SetUpLogging();

}  // namespace leakapp
