// The one list of counters: what `cppdiag counters list` prints, the columns
// of `counters collect` and `monitor`, the values of the socket's counters
// reply and the cppdiag_* families of leakapp's /metrics. A counter's name is
// its Prometheus series as /metrics writes it: the family name, plus a label
// for the families that have several series
// (cppdiag_process_page_faults_total{kind="minor"}).
//
// Dependency-free (the CLI links it without the runtime).
//
//   for (const CounterInfo& c : Catalog()) std::puts(c.name);
//   const CounterInfo* rss = FindCounter("cppdiag_process_resident_memory_bytes");
#pragma once

#include <span>
#include <string_view>

namespace cppdiag::counters {

enum class CounterKind {
  kGauge,    // a value now
  kCounter,  // cumulative since the process started (Prometheus counter)
  kDerived,  // computed by the CLI from samples (rates, percentages); not in /metrics
};

enum class CounterUnit { kBytes, kCount, kSeconds, kPercent, kCores, kBytesPerSecond };

struct CounterInfo {
  const char* name;         // series: family, or family{label="value"}
  const char* family;       // the Prometheus family
  const char* label_name;   // nullptr, or the label that tells the family's series apart
  const char* label_value;  // its value for this series
  CounterUnit unit;
  CounterKind kind;
  const char* title;        // short column title for people ("RSS")
  const char* description;  // one line; also the family's # HELP
  const char* when;         // when the target reports it ("always", "profiler on", ...)
};

// Every counter, in display order (series of one family are adjacent).
std::span<const CounterInfo> Catalog();

// The entry named `name` (a series name), or nullptr.
const CounterInfo* FindCounter(std::string_view name);

// "gauge", "counter", "derived".
const char* CounterKindName(CounterKind kind);
// "bytes", "count", "seconds", "percent", "cores", "bytes/s".
const char* CounterUnitName(CounterUnit unit);

// Names of the counters (series) the runtime measures and the CLI derives.
namespace names {
inline constexpr const char* kRss = "cppdiag_process_resident_memory_bytes";
inline constexpr const char* kPeakRss = "cppdiag_process_resident_memory_peak_bytes";
inline constexpr const char* kVirtual = "cppdiag_process_virtual_memory_bytes";
inline constexpr const char* kHeapInUse = "cppdiag_heap_in_use_bytes";
inline constexpr const char* kHeapSampledLive = "cppdiag_heap_sampled_live_bytes";
inline constexpr const char* kHeapLimited = "cppdiag_heap_limited_bytes";
inline constexpr const char* kHeapHardLimit = "cppdiag_heap_hard_limit_bytes";
inline constexpr const char* kHeapLimitFailures = "cppdiag_heap_limit_failures_total";
inline constexpr const char* kHeapAllocated = "cppdiag_heap_allocated_bytes_total";
inline constexpr const char* kHeapFreed = "cppdiag_heap_freed_bytes_total";
inline constexpr const char* kAllocationRate = "cppdiag_heap_allocation_rate_bytes_per_second";
inline constexpr const char* kCgroupUsage = "cppdiag_cgroup_memory_usage_bytes";
inline constexpr const char* kCgroupLimit = "cppdiag_cgroup_memory_limit_bytes";
inline constexpr const char* kCgroupPercent = "cppdiag_cgroup_memory_usage_percent";
inline constexpr const char* kCpuQuota = "cppdiag_cgroup_cpu_quota_cores";
inline constexpr const char* kCpuSeconds = "cppdiag_process_cpu_seconds_total";
inline constexpr const char* kCpuCorePercent = "cppdiag_process_cpu_core_percent";
inline constexpr const char* kCpuQuotaPercent = "cppdiag_process_cpu_quota_percent";
inline constexpr const char* kThreads = "cppdiag_process_threads";
inline constexpr const char* kOpenFds = "cppdiag_process_open_fds";
inline constexpr const char* kMinorFaults = "cppdiag_process_page_faults_total{kind=\"minor\"}";
inline constexpr const char* kMajorFaults = "cppdiag_process_page_faults_total{kind=\"major\"}";
inline constexpr const char* kDumpsWritten = "cppdiag_dumps_written_total";
}  // namespace names

}  // namespace cppdiag::counters
