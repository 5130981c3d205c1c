// What the process looks like from the inside, for /status and the cppdiag_*
// families of /metrics. The reading itself is libcppdiag's
// (diag/counters/collect.h), the one the diagnostic socket's counters command
// returns, and the families are named by its catalog
// (diag/counters/catalog.h): a dashboard works with either source.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "common/cgroup.h"
#include "common/status.h"
#include "diag/counters/sample.h"
#include "leakapp/prometheus.h"

namespace leakapp {

struct ProcessMetrics {
  pid_t pid = 0;
  uint64_t rss_bytes = 0;       // VmRSS
  uint64_t peak_rss_bytes = 0;  // VmHWM
  uint64_t virtual_bytes = 0;   // VmSize
  int threads = 0;
  uint64_t open_fds = 0;
  double cpu_seconds = 0;  // user + system
  uint64_t minor_faults = 0;
  uint64_t major_faults = 0;
  uint64_t heap_in_use_bytes = 0;  // mallinfo2 (0 in sanitizer builds)
  // This process's memory cgroup now; nullopt when none is found.
  std::optional<cppdiag::CgroupMemory> cgroup;
  // Everything measured, by catalog name (the fields above are read from it).
  cppdiag::counters::Sample counters;
};

// Reads the counters now. Fails only if /proc/self/status could not be read.
// A read costs a few hundred microseconds (a dozen /proc and cgroup files,
// mallinfo2's walk of the arenas).
cppdiag::Result<ProcessMetrics> ReadProcessMetrics();

// One reading shared by the requests that come within `max_age` of it, so
// that a poller or a load test on /status and /metrics costs the process one
// reading per `max_age`, not one per request. Invalidate() makes the next
// Read() fresh (the leak controls call it: a reply after them never shows
// the memory before them). Thread-safe: while one caller reads afresh, the
// others get the previous reading instead of waiting (after Invalidate(),
// each reads its own).
class MetricsCache {
 public:
  explicit MetricsCache(std::chrono::milliseconds max_age) : max_age_(max_age) {}

  cppdiag::Result<ProcessMetrics> Read();
  void Invalidate();

 private:
  const std::chrono::milliseconds max_age_;
  std::mutex mu_;
  std::optional<ProcessMetrics> last_;
  std::chrono::steady_clock::time_point taken_;  // of last_, or of the last Invalidate()
  bool refreshing_ = false;
};

// The cppdiag_* families: one per catalog family the sample has a value for
// (derived counters, which need two samples, are left to Prometheus).
// `heap_hard_limit_bytes` is exported as cppdiag_heap_hard_limit_bytes when
// the sample lacks it (a limit the hooks do not enforce).
std::vector<MetricFamily> ProcessMetricFamilies(const ProcessMetrics& m,
                                                std::optional<uint64_t> heap_hard_limit_bytes);

}  // namespace leakapp
