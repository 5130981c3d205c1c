// leakapp's endpoints (DESIGN.md's leakapp table; GET / and /logs are
// page_routes.h's), added to a route table:
//
//   GET  /triggerMemoryLeak?chunkKb=1024&intervalMs=100&maxMb=0&pattern=vector
//          200 {"status":"started",...}; 409 while a leak runs; 400 on a bad value
//   GET  /stopMemoryLeak    stop leaking, keep what leaked
//   GET  /releaseMemory     free what leaked, give it back to the OS
//   GET  /status            JSON: leaked MB, RSS, heap limit, cgroup, leak state
//   GET  /healthz           200 "ok" while the process serves
//   GET  /readyz            200 once listening, 503 while shutting down
//   GET  /metrics           Prometheus text format (cppdiag_* and leakapp_*)
//   POST /crash?kind=segv|abort|oom   202, then the process crashes
//
// /status and /metrics share one reading of the process (process_metrics.h's
// MetricsCache) for kMetricsMaxAge; the leak controls make the next one fresh.
//
// A bad parameter gets 400 {"error": "...", "parameter": "chunkKb"}
// (request_params.h). Probes and scrapes (/healthz, /readyz, /metrics,
// /status) are logged at debug level.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "leakapp/http_router.h"
#include "leakapp/leak_engine.h"

namespace leakapp {

inline constexpr std::chrono::milliseconds kMetricsMaxAge{10};

struct ApiContext {
  LeakEngine& engine;                             // must outlive the routes
  std::optional<uint64_t> heap_hard_limit_bytes;  // reported by /status and /metrics
  std::chrono::steady_clock::time_point started;  // /status's uptime counts from here
  std::function<bool()> ready;                    // /readyz: listening, not shutting down
};

void AddApiRoutes(HttpRouter& router, ApiContext context);

}  // namespace leakapp
