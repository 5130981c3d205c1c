#include "leakapp/status_report.h"

#include "diag/counters/catalog.h"

namespace leakapp {
namespace {

double ToMb(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

template <typename T>
nlohmann::ordered_json OrNull(const std::optional<T>& v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

}  // namespace

nlohmann::ordered_json LeakJson(const LeakSnapshot& leak) {
  bool idle = leak.state == LeakState::kIdle;
  auto param = [idle](uint64_t v) {
    return idle ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(v);
  };
  return {
      {"state", LeakStateName(leak.state)},
      {"pattern", idle ? nlohmann::ordered_json(nullptr) : LeakPatternName(leak.params.pattern)},
      {"chunkKb", param(leak.params.chunk_kb)},
      {"intervalMs", param(leak.params.interval_ms)},
      {"maxMb", param(leak.params.max_mb)},
      {"rounds", leak.rounds},
      {"roundsTotal", leak.rounds_total},
  };
}

nlohmann::ordered_json StatusJson(const ProcessMetrics& process, const LeakSnapshot& leak,
                                  std::optional<uint64_t> heap_hard_limit_bytes,
                                  double uptime_seconds) {
  nlohmann::ordered_json cgroup = nullptr;
  if (process.cgroup) {
    cgroup = {{"version", process.cgroup->version},
              {"usageBytes", process.cgroup->usage_bytes},
              {"limitBytes", OrNull(process.cgroup->limit_bytes)}};
  }
  return {
      {"pid", process.pid},
      {"uptimeSeconds", uptime_seconds},
      {"leakedBytes", leak.leaked_bytes},
      {"leakedMb", ToMb(leak.leaked_bytes)},
      {"rssBytes", process.rss_bytes},
      {"rssMb", ToMb(process.rss_bytes)},
      {"peakRssBytes", process.peak_rss_bytes},
      {"peakRssMb", ToMb(process.peak_rss_bytes)},
      {"heapInUseBytes", process.heap_in_use_bytes},
      {"heapHardLimitBytes", OrNull(heap_hard_limit_bytes)},
      {"cgroup", cgroup},
      {"leak", LeakJson(leak)},
      {"dumpsWritten",
       static_cast<uint64_t>(
           process.counters.Get(cppdiag::counters::names::kDumpsWritten).value_or(0))},
  };
}

std::string MetricsText(const ProcessMetrics& process, const LeakSnapshot& leak,
                        std::optional<uint64_t> heap_hard_limit_bytes) {
  std::vector<MetricFamily> families = ProcessMetricFamilies(process, heap_hard_limit_bytes);
  families.push_back({"leakapp_leaked_bytes",
                      "Bytes leaked on purpose and still held.",
                      MetricType::kGauge,
                      {{{}, static_cast<double>(leak.leaked_bytes)}}});
  families.push_back({"leakapp_leak_rounds_total",
                      "Leak rounds since the process started.",
                      MetricType::kCounter,
                      {{{}, static_cast<double>(leak.rounds_total)}}});
  families.push_back({"leakapp_leak_running",
                      "1 while the leak thread runs, else 0.",
                      MetricType::kGauge,
                      {{{}, leak.state == LeakState::kRunning ? 1.0 : 0.0}}});
  return RenderPrometheusText(families);
}

}  // namespace leakapp
