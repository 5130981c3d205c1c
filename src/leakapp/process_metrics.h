// What the process looks like from the inside: memory, threads, descriptors,
// CPU, page faults, the malloc heap and the memory cgroup, read fresh on each
// call. Feeds /status and the cppdiag_* families of /metrics.
//
// The metric names are those the cppdiag CLI's counters will use, so a
// dashboard works with either source; this file is meant to move into
// src/diag/counters once the CLI needs it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "common/cgroup.h"
#include "common/status.h"
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
  uint64_t heap_in_use_bytes = 0;  // mallinfo2: in-use arena bytes + mmapped chunks
  // This process's memory cgroup now; nullopt when none is found.
  std::optional<cppdiag::CgroupMemory> cgroup;
};

// Reads /proc/self/{status,stat,fd}, mallinfo2() and the memory cgroup. Fails
// only if /proc/self/status or /proc/self/stat cannot be read.
cppdiag::Result<ProcessMetrics> ReadProcessMetrics();

// The cppdiag_* metric families of `m`: cppdiag_process_resident_memory_bytes,
// cppdiag_process_resident_memory_peak_bytes,
// cppdiag_process_virtual_memory_bytes, cppdiag_process_threads,
// cppdiag_process_open_fds, cppdiag_process_cpu_seconds_total,
// cppdiag_process_page_faults_total{kind="minor|major"},
// cppdiag_heap_in_use_bytes, cppdiag_heap_hard_limit_bytes (only when a limit
// is set), cppdiag_cgroup_memory_usage_bytes and
// cppdiag_cgroup_memory_limit_bytes (only when known).
std::vector<MetricFamily> ProcessMetricFamilies(const ProcessMetrics& m,
                                                std::optional<uint64_t> heap_hard_limit_bytes);

}  // namespace leakapp
