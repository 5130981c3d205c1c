// The bodies of /status (JSON) and /metrics (Prometheus text), built from a
// fresh read of the process and a snapshot of the leak.
//
// /status:
//   {"pid": 42, "uptimeSeconds": 3.5,
//    "leakedBytes": 1048576, "leakedMb": 1.0,
//    "rssBytes": ..., "rssMb": ..., "peakRssBytes": ..., "peakRssMb": ...,
//    "heapInUseBytes": ..., "heapHardLimitBytes": 235929600 | null,
//    "cgroup": {"version": 1, "usageBytes": ..., "limitBytes": 314572800 | null} | null,
//    "leak": {"state": "running|stopped|idle", "pattern": "vector" | null,
//             "chunkKb": 1024 | null, "intervalMs": 100 | null, "maxMb": 0 | null,
//             "rounds": 12, "roundsTotal": 12},
//    "dumpsWritten": 0}
// dumpsWritten: dumps this process wrote itself (on demand over the socket,
// the pre-OOM watchdog; the counters' cppdiag_dumps_written_total).
// The pattern and parameters are those of the running or last run, null
// while idle.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "leakapp/leak_engine.h"
#include "leakapp/process_metrics.h"

namespace leakapp {

nlohmann::ordered_json LeakJson(const LeakSnapshot& leak);

nlohmann::ordered_json StatusJson(const ProcessMetrics& process, const LeakSnapshot& leak,
                                  std::optional<uint64_t> heap_hard_limit_bytes,
                                  double uptime_seconds);

// The cppdiag_* families (the counters catalog's names, as the socket's
// counters command reports them: process_metrics.h), then leakapp's own:
// leakapp_leaked_bytes, leakapp_leak_rounds_total and leakapp_leak_running.
std::string MetricsText(const ProcessMetrics& process, const LeakSnapshot& leak,
                        std::optional<uint64_t> heap_hard_limit_bytes);

}  // namespace leakapp
