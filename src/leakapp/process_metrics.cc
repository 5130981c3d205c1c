#include "leakapp/process_metrics.h"

#include <dirent.h>
#include <malloc.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "common/proc.h"

namespace leakapp {
namespace {

uint64_t CountOpenFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  uint64_t n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n > 0 ? n - 1 : 0;  // not counting the descriptor of the listing itself
}

MetricFamily Gauge(std::string name, std::string help, double value) {
  return {std::move(name), std::move(help), MetricType::kGauge, {{{}, value}}};
}

}  // namespace

cppdiag::Result<ProcessMetrics> ReadProcessMetrics() {
  ProcessMetrics m;
  m.pid = ::getpid();
  CPPDIAG_ASSIGN_OR_RETURN(auto status, cppdiag::ReadProcStatus(m.pid));
  CPPDIAG_ASSIGN_OR_RETURN(auto stat, cppdiag::ReadProcStat(m.pid));
  m.rss_bytes = status.vm_rss_bytes;
  m.peak_rss_bytes = status.vm_hwm_bytes;
  m.virtual_bytes = status.vm_size_bytes;
  m.threads = status.threads;
  m.open_fds = CountOpenFds();
  static const double kTicksPerSecond = static_cast<double>(::sysconf(_SC_CLK_TCK));
  m.cpu_seconds = static_cast<double>(stat.utime_ticks + stat.stime_ticks) / kTicksPerSecond;
  m.minor_faults = stat.minor_faults;
  m.major_faults = stat.major_faults;
  struct mallinfo2 mi = ::mallinfo2();
  m.heap_in_use_bytes = mi.uordblks + mi.hblkhd;
  if (auto cgroup = cppdiag::CgroupReader().ReadMemory(); cgroup.ok()) m.cgroup = *cgroup;
  return m;
}

std::vector<MetricFamily> ProcessMetricFamilies(const ProcessMetrics& m,
                                                std::optional<uint64_t> heap_hard_limit_bytes) {
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  std::vector<MetricFamily> f;
  f.push_back(Gauge("cppdiag_process_resident_memory_bytes", "Resident set size (VmRSS) in bytes.",
                    d(m.rss_bytes)));
  f.push_back(Gauge("cppdiag_process_resident_memory_peak_bytes",
                    "Peak resident set size (VmHWM) in bytes.", d(m.peak_rss_bytes)));
  f.push_back(Gauge("cppdiag_process_virtual_memory_bytes",
                    "Virtual memory size (VmSize) in bytes.", d(m.virtual_bytes)));
  f.push_back(Gauge("cppdiag_process_threads", "Number of threads.", m.threads));
  f.push_back(Gauge("cppdiag_process_open_fds", "Number of open file descriptors.", d(m.open_fds)));
  f.push_back({"cppdiag_process_cpu_seconds_total",
               "User and system CPU time spent, in seconds.",
               MetricType::kCounter,
               {{{}, m.cpu_seconds}}});
  f.push_back(
      {"cppdiag_process_page_faults_total",
       "Page faults, by kind (major faults needed I/O).",
       MetricType::kCounter,
       {{{{"kind", "minor"}}, d(m.minor_faults)}, {{{"kind", "major"}}, d(m.major_faults)}}});
  f.push_back(Gauge("cppdiag_heap_in_use_bytes",
                    "Bytes the malloc heap has handed out and not freed (mallinfo2).",
                    d(m.heap_in_use_bytes)));
  if (heap_hard_limit_bytes) {
    f.push_back(Gauge("cppdiag_heap_hard_limit_bytes",
                      "Heap hard limit in bytes; allocation fails above it.",
                      d(*heap_hard_limit_bytes)));
  }
  if (m.cgroup) {
    f.push_back(Gauge("cppdiag_cgroup_memory_usage_bytes",
                      "Memory usage of the process's memory cgroup, page cache included.",
                      d(m.cgroup->usage_bytes)));
    if (m.cgroup->limit_bytes) {
      f.push_back(Gauge("cppdiag_cgroup_memory_limit_bytes",
                        "Effective memory limit of the process's memory cgroup.",
                        d(*m.cgroup->limit_bytes)));
    }
  }
  return f;
}

}  // namespace leakapp
