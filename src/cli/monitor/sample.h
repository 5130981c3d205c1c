// What one poll of `cppdiag monitor` reads of a process: RSS, thread and
// descriptor counts, its memory cgroup's usage against its limit, and its
// CPU use over the last window (not a lifetime average, ProcDump #240): the
// utime + stime of /proc/<pid>/stat (the whole thread group, dead threads
// included) between the oldest sample of the window and now, as % of one
// core, or of the cgroup's CPU quota (v2 cpu.max, v1 cfs_quota_us).
//
//   ProcessSampler s(pid, {.cpu = true, .window = std::chrono::seconds(1)});
//   Sample now = s.Read(Clock::now());   // now.cpu_pct: nullopt for the first second
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "diag/ipc/client.h"

namespace cppdiag::cli::monitor {

using Clock = std::chrono::steady_clock;

struct Sample {
  bool alive = false;
  std::optional<double> rss, threads, fds, cgroup_pct, cpu_pct;
};

struct SamplerOptions {
  bool cgroup = false;    // read the memory cgroup (--cgroup-memory)
  bool cpu = false;       // measure CPU (--cpu, --cpu-below)
  bool of_quota = false;  // CPU as % of the cgroup's quota, not of one core
  std::chrono::nanoseconds window = std::chrono::seconds(1);
};

class ProcessSampler {
 public:
  // `start_ticks`: the process's start time (/proc/<pid>/stat field 22); a
  // process of that pid with another start time is another process (the
  // target is then reported gone). 0: not checked.
  ProcessSampler(pid_t pid, uint64_t start_ticks, SamplerOptions options)
      : pid_(pid), start_ticks_(start_ticks), o_(options) {}

  Sample Read(Clock::time_point now);

  // Why --of-quota gives no value (no quota, no cpu hierarchy), once known.
  const std::string& quota_problem() const { return quota_problem_; }
  // Why --cgroup-memory gives no value (no limit, a cgroup out of view and
  // no libcppdiag to ask), once known.
  const std::string& cgroup_problem() const { return cgroup_problem_; }

 private:
  std::optional<double> CpuPercent(Clock::time_point now, uint64_t ticks);
  std::optional<double> CgroupPercent();

  pid_t pid_;
  uint64_t start_ticks_;
  SamplerOptions o_;
  std::deque<std::pair<Clock::time_point, uint64_t>> history_;  // (when, utime + stime ticks)
  std::string quota_problem_, cgroup_problem_;
  std::optional<ipc::Endpoint>
      socket_;  // the target's, once found (--cgroup-memory from a sidecar)
};

// The number of open descriptors of `pid` (entries of /proc/<pid>/fd).
std::optional<double> CountFds(pid_t pid);

}  // namespace cppdiag::cli::monitor
