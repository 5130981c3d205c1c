#include "cli/monitor/sample.h"

#include <dirent.h>
#include <unistd.h>

#include "common/cgroup.h"
#include "common/proc.h"

namespace cppdiag::cli::monitor {

std::optional<double> CountFds(pid_t pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (d == nullptr) return std::nullopt;
  double n = 0;
  while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n;
}

Sample ProcessSampler::Read(Clock::time_point now) {
  Sample s;
  auto stat = ReadProcStat(pid_);
  if (!stat || stat->state == 'Z' || stat->state == 'X' ||
      (start_ticks_ != 0 && stat->start_time_ticks != start_ticks_)) {
    return s;
  }
  auto status = ReadProcStatus(pid_);
  if (!status) return s;
  s.alive = true;
  s.rss = static_cast<double>(status->vm_rss_bytes);
  s.threads = status->threads;
  s.fds = CountFds(pid_);
  if (o_.cgroup) {
    auto cg = CgroupReader().ReadMemory(pid_);
    if (cg && cg->limit_bytes && *cg->limit_bytes > 0)
      s.cgroup_pct =
          100.0 * static_cast<double>(cg->usage_bytes) / static_cast<double>(*cg->limit_bytes);
  }
  if (o_.cpu) s.cpu_pct = CpuPercent(now, stat->utime_ticks + stat->stime_ticks);
  return s;
}

std::optional<double> ProcessSampler::CpuPercent(Clock::time_point now, uint64_t ticks) {
  history_.emplace_back(now, ticks);
  // Keep the newest sample at least a window old as the window's start.
  while (history_.size() >= 2 && now - history_[1].first >= o_.window) history_.pop_front();
  const auto& [then, then_ticks] = history_.front();
  const double seconds = std::chrono::duration<double>(now - then).count();
  if (now - then < o_.window || seconds <= 0) return std::nullopt;
  static const long hz = ::sysconf(_SC_CLK_TCK);
  double pct = 100.0 * static_cast<double>(ticks - then_ticks) / static_cast<double>(hz) / seconds;
  if (!o_.of_quota) return pct;
  auto cpu = CgroupReader().ReadCpu(pid_);
  if (!cpu) {
    quota_problem_ = "no cpu cgroup: " + cpu.error().message();
    return std::nullopt;
  }
  if (!cpu->quota_cores || *cpu->quota_cores <= 0) {
    quota_problem_ = "its cgroup has no CPU quota";
    return std::nullopt;
  }
  quota_problem_.clear();
  return pct / *cpu->quota_cores;
}

}  // namespace cppdiag::cli::monitor
