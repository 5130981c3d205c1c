#include "leakapp/process_metrics.h"

#include <cerrno>

#include "diag/counters/catalog.h"
#include "diag/counters/collect.h"

namespace leakapp {

namespace names = cppdiag::counters::names;
using cppdiag::counters::CounterInfo;
using cppdiag::counters::CounterKind;

cppdiag::Result<ProcessMetrics> ReadProcessMetrics() {
  cppdiag::counters::CollectDetail detail;
  ProcessMetrics m;
  m.counters = cppdiag::counters::CollectCounters(&detail);
  const auto& c = m.counters;
  auto rss = c.Get(names::kRss);
  if (!rss) return cppdiag::Error(EIO, "read", "/proc/self/status");
  m.pid = c.pid;
  m.rss_bytes = static_cast<uint64_t>(*rss);
  m.peak_rss_bytes = static_cast<uint64_t>(c.Get(names::kPeakRss).value_or(0));
  auto get = [&c](const char* name) { return static_cast<uint64_t>(c.Get(name).value_or(0)); };
  m.virtual_bytes = get(names::kVirtual);
  m.threads = static_cast<int>(get(names::kThreads));
  m.open_fds = get(names::kOpenFds);
  m.cpu_seconds = c.Get(names::kCpuSeconds).value_or(0);
  m.minor_faults = get(names::kMinorFaults);
  m.major_faults = get(names::kMajorFaults);
  m.heap_in_use_bytes = get(names::kHeapInUse);
  m.cgroup = detail.memory_cgroup;
  return m;
}

cppdiag::Result<ProcessMetrics> MetricsCache::Read() {
  {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    // Fresh, or being read by another request: this one takes the last
    // reading rather than queueing behind the read.
    if (last_ && (now - taken_ < max_age_ || refreshing_)) return *last_;
    refreshing_ = true;
  }
  auto taken = std::chrono::steady_clock::now();
  auto fresh = ReadProcessMetrics();
  std::lock_guard lock(mu_);
  refreshing_ = false;
  if (fresh && taken > taken_) {
    last_ = *fresh;
    taken_ = taken;
  }
  return fresh;
}

void MetricsCache::Invalidate() {
  std::lock_guard lock(mu_);
  last_.reset();
  // A reading under way started before the call: not to be kept.
  taken_ = std::chrono::steady_clock::now();
}

std::vector<MetricFamily> ProcessMetricFamilies(const ProcessMetrics& m,
                                                std::optional<uint64_t> heap_hard_limit_bytes) {
  std::vector<MetricFamily> families;
  for (const CounterInfo& info : cppdiag::counters::Catalog()) {
    if (info.kind == CounterKind::kDerived) continue;
    auto value = m.counters.Get(info.name);
    if (!value && info.name == std::string_view(names::kHeapHardLimit) && heap_hard_limit_bytes) {
      value = static_cast<double>(*heap_hard_limit_bytes);
    }
    if (!value) continue;
    // Series of one family are adjacent in the catalog.
    if (families.empty() || families.back().name != info.family) {
      families.push_back(
          {info.family,
           info.description,
           info.kind == CounterKind::kCounter ? MetricType::kCounter : MetricType::kGauge,
           {}});
    }
    MetricSample sample;
    if (info.label_name != nullptr) sample.labels = {{info.label_name, info.label_value}};
    sample.value = *value;
    families.back().samples.push_back(std::move(sample));
  }
  return families;
}

}  // namespace leakapp
