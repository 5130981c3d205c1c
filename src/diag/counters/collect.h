// Reads this process's counters (catalog.h) now: /proc/self/{status,stat,fd},
// mallinfo2(), the allocation hooks and the sampling profiler (heap/), the
// memory cgroup and its CPU quota (common/cgroup.h), and the dumps written
// (dump/self_dump.h). What the socket's counters command returns and what
// leakapp's /metrics renders.
//
// Only what is measured is reported, never a 0 in its place: mallinfo2 and
// the hooks' figures only when the hooks are active (glibc's allocator
// serves malloc: not in sanitizer builds), the hooks' live and freed counts
// only while a heap hard limit is set (the hooks keep them exact only then),
// the sampled live heap only while the profiler runs, cgroup figures only
// when a cgroup (limit, quota) is found.
//
// Normal context only (allocates, reads files); safe from any thread.
#pragma once

#include <optional>

#include "common/cgroup.h"
#include "diag/counters/sample.h"

namespace cppdiag::counters {

// What CollectCounters read besides the values, for callers that show it.
struct CollectDetail {
  std::optional<CgroupMemory> memory_cgroup;
  std::optional<CgroupCpu> cpu_cgroup;
};

Sample CollectCounters(CollectDetail* detail = nullptr);

}  // namespace cppdiag::counters
