#include "diag/counters/catalog.h"

namespace cppdiag::counters {
namespace {

using K = CounterKind;
using U = CounterUnit;
namespace n = names;

constexpr CounterInfo kCatalog[] = {
    {n::kRss, n::kRss, nullptr, nullptr, U::kBytes, K::kGauge, "RSS",
     "Resident set size (VmRSS) in bytes.", "always"},
    {n::kPeakRss, n::kPeakRss, nullptr, nullptr, U::kBytes, K::kGauge, "Peak RSS",
     "Peak resident set size (VmHWM) in bytes.", "always"},
    {n::kVirtual, n::kVirtual, nullptr, nullptr, U::kBytes, K::kGauge, "Virtual memory",
     "Virtual memory size (VmSize) in bytes.", "always"},
    {n::kHeapInUse, n::kHeapInUse, nullptr, nullptr, U::kBytes, K::kGauge, "Heap in use",
     "Bytes the malloc heap has handed out and not freed (mallinfo2).",
     "glibc's allocator in use (not in sanitizer builds)"},
    {n::kHeapSampledLive, n::kHeapSampledLive, nullptr, nullptr, U::kBytes, K::kGauge,
     "Sampled live heap", "Live heap estimated from the sampling profiler's live table.",
     "heap profiler on (CPPDIAG_HEAP_SAMPLE_BYTES > 0)"},
    {n::kHeapLimited, n::kHeapLimited, nullptr, nullptr, U::kBytes, K::kGauge,
     "Heap counted against limit",
     "Live heap bytes the allocation hooks count against the heap hard limit.",
     "once a heap hard limit was set"},
    {n::kHeapHardLimit, n::kHeapHardLimit, nullptr, nullptr, U::kBytes, K::kGauge,
     "Heap hard limit", "Heap hard limit in bytes; allocation fails above it.",
     "heap hard limit set"},
    {n::kHeapLimitFailures, n::kHeapLimitFailures, nullptr, nullptr, U::kCount, K::kCounter,
     "Heap limit failures", "Allocations the heap hard limit refused.", "allocation hooks active"},
    {n::kHeapAllocated, n::kHeapAllocated, nullptr, nullptr, U::kBytes, K::kCounter, "Allocated",
     "Bytes requested from the allocator since start, all allocations.", "allocation hooks active"},
    {n::kHeapFreed, n::kHeapFreed, nullptr, nullptr, U::kBytes, K::kCounter, "Freed",
     "Bytes freed (chunk sizes) since the hooks began exact accounting.",
     "once a heap hard limit was set"},
    {n::kAllocationRate, n::kAllocationRate, nullptr, nullptr, U::kBytesPerSecond, K::kDerived,
     "Allocation rate", "Bytes allocated per second between two samples.",
     "allocation hooks active; from the second sample"},
    {n::kCgroupUsage, n::kCgroupUsage, nullptr, nullptr, U::kBytes, K::kGauge, "Cgroup usage",
     "Memory usage of the process's memory cgroup, page cache included.", "memory cgroup found"},
    {n::kCgroupLimit, n::kCgroupLimit, nullptr, nullptr, U::kBytes, K::kGauge, "Cgroup limit",
     "Effective memory limit of the process's memory cgroup.", "memory cgroup limit set"},
    {n::kCgroupPercent, n::kCgroupPercent, nullptr, nullptr, U::kPercent, K::kDerived,
     "Cgroup usage % of limit", "Cgroup memory usage as a percentage of its limit.",
     "memory cgroup limit set"},
    {n::kCpuQuota, n::kCpuQuota, nullptr, nullptr, U::kCores, K::kGauge, "CPU quota",
     "CPU quota of the process's cgroup in cores (quota / period).", "cgroup CPU quota set"},
    {n::kCpuSeconds, n::kCpuSeconds, nullptr, nullptr, U::kSeconds, K::kCounter, "CPU time",
     "User and system CPU time spent, in seconds.", "always"},
    {n::kCpuCorePercent, n::kCpuCorePercent, nullptr, nullptr, U::kPercent, K::kDerived,
     "CPU % of one core", "CPU use between two samples, 100 = one core busy.",
     "from the second sample"},
    {n::kCpuQuotaPercent, n::kCpuQuotaPercent, nullptr, nullptr, U::kPercent, K::kDerived,
     "CPU % of quota", "CPU use between two samples as a percentage of the cgroup's CPU quota.",
     "cgroup CPU quota set; from the second sample"},
    {n::kThreads, n::kThreads, nullptr, nullptr, U::kCount, K::kGauge, "Threads",
     "Number of threads.", "always"},
    {n::kOpenFds, n::kOpenFds, nullptr, nullptr, U::kCount, K::kGauge, "Open fds",
     "Number of open file descriptors.", "always"},
    {n::kMinorFaults, "cppdiag_process_page_faults_total", "kind", "minor", U::kCount, K::kCounter,
     "Minor page faults", "Page faults, by kind (major faults needed I/O).", "always"},
    {n::kMajorFaults, "cppdiag_process_page_faults_total", "kind", "major", U::kCount, K::kCounter,
     "Major page faults", "Page faults, by kind (major faults needed I/O).", "always"},
    {n::kDumpsWritten, n::kDumpsWritten, nullptr, nullptr, U::kCount, K::kCounter, "Dumps written",
     "Dumps this process wrote (crash, OOM watchdog, on request).", "always"},
};

}  // namespace

std::span<const CounterInfo> Catalog() { return kCatalog; }

const CounterInfo* FindCounter(std::string_view name) {
  for (const CounterInfo& c : kCatalog) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

const char* CounterKindName(CounterKind kind) {
  switch (kind) {
    case CounterKind::kGauge:
      return "gauge";
    case CounterKind::kCounter:
      return "counter";
    case CounterKind::kDerived:
      return "derived";
  }
  return "?";
}

const char* CounterUnitName(CounterUnit unit) {
  switch (unit) {
    case CounterUnit::kBytes:
      return "bytes";
    case CounterUnit::kCount:
      return "count";
    case CounterUnit::kSeconds:
      return "seconds";
    case CounterUnit::kPercent:
      return "percent";
    case CounterUnit::kCores:
      return "cores";
    case CounterUnit::kBytesPerSecond:
      return "bytes/s";
  }
  return "?";
}

}  // namespace cppdiag::counters
