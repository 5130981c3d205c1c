#include "diag/counters/collect.h"

#include <dirent.h>
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include "common/async_safe.h"
#include "common/proc.h"
#include "diag/counters/catalog.h"
#include "diag/dump/self_dump.h"
#include "diag/heap/allocation_hooks.h"
#include "diag/heap/heap_profiler.h"
#include "diag/heap/sampler.h"

namespace cppdiag::counters {
namespace {

std::optional<uint64_t> CountOpenFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  uint64_t n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n > 0 ? n - 1 : 0;  // not counting the descriptor of the listing itself
}

// The profiler's unbiased estimate of the live heap: the sum of its stacks'
// estimates (heap_profile.h says how a sample is weighted). The loop neither
// allocates nor calls out while it holds the table's lock.
std::optional<double> SampledLiveBytes() {
  if (heap::HeapSamplePeriod() == 0) return std::nullopt;
  heap::LiveTable* table = heap::ProfilerTable();
  if (table == nullptr) return std::nullopt;
  double bytes = 0;
  table->Lock();
  size_t n = table->stack_count();
  for (size_t i = 0; i < n; ++i) bytes += table->stack(i).est_bytes;
  table->Unlock();
  return bytes;
}

}  // namespace

Sample CollectCounters(CollectDetail* detail) {
  Sample s;
  s.pid = ::getpid();
  s.monotonic_ns = static_cast<int64_t>(MonotonicNs());
  s.unix_ns = static_cast<int64_t>(RealtimeNs());
  auto& v = s.values;
  auto d = [](uint64_t x) { return static_cast<double>(x); };

  if (auto status = ReadProcStatus(s.pid)) {
    v[names::kRss] = d(status->vm_rss_bytes);
    v[names::kPeakRss] = d(status->vm_hwm_bytes);
    v[names::kVirtual] = d(status->vm_size_bytes);
    v[names::kThreads] = status->threads;
  }
  if (auto stat = ReadProcStat(s.pid)) {
    static const double kTicksPerSecond = static_cast<double>(::sysconf(_SC_CLK_TCK));
    v[names::kCpuSeconds] = d(stat->utime_ticks + stat->stime_ticks) / kTicksPerSecond;
    v[names::kMinorFaults] = d(stat->minor_faults);
    v[names::kMajorFaults] = d(stat->major_faults);
  }
  if (auto fds = CountOpenFds()) v[names::kOpenFds] = d(*fds);

  if (auto live = SampledLiveBytes()) v[names::kHeapSampledLive] = *live;
  // Without the hooks (sanitizer builds) the sanitizer's allocator serves
  // malloc and glibc's mallinfo2 sees none of it. With them, sampled blocks
  // are the profiler's, not glibc's: added to glibc's figure.
  if (heap::HooksActive()) {
    struct mallinfo2 mi = ::mallinfo2();
    v[names::kHeapInUse] = d(mi.uordblks + mi.hblkhd + heap::HeapSampledBlockBytes());
    if (uint64_t limit = heap::HeapHardLimit(); limit != 0) v[names::kHeapHardLimit] = d(limit);
    // The hooks count live and freed bytes exactly only once a hard limit
    // has needed them (allocation_hooks.h); before that those figures are
    // not measured and are left out rather than reported as 0.
    if (heap::HeapAccountingExact()) {
      v[names::kHeapLimited] = d(heap::HeapInUseBytes());
      v[names::kHeapFreed] = d(heap::HeapTotalFreedBytes());
    }
    v[names::kHeapLimitFailures] = d(heap::HeapLimitFailures());
    v[names::kHeapAllocated] = d(heap::HeapTotalAllocatedBytes());
  }

  CgroupReader cgroups;
  if (auto mem = cgroups.ReadMemory()) {
    v[names::kCgroupUsage] = d(mem->usage_bytes);
    if (mem->limit_bytes) v[names::kCgroupLimit] = d(*mem->limit_bytes);
    if (detail) detail->memory_cgroup = *mem;
  }
  if (auto cpu = cgroups.ReadCpu()) {
    if (cpu->quota_cores) v[names::kCpuQuota] = *cpu->quota_cores;
    if (detail) detail->cpu_cgroup = *cpu;
  }
  v[names::kDumpsWritten] = d(dump::SelfDumpsWritten());
  return s;
}

}  // namespace cppdiag::counters
