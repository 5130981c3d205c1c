#include "cli/monitor/sample.h"

#include <dirent.h>
#include <unistd.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli/discovery.h"
#include "common/cgroup.h"
#include "common/proc.h"
#include "diag/ipc/client.h"

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
  if (o_.cgroup) s.cgroup_pct = CgroupPercent();
  if (o_.cpu) s.cpu_pct = CpuPercent(now, stat->utime_ticks + stat->stime_ticks);
  return s;
}

std::optional<double> ProcessSampler::CgroupPercent() {
  auto percent = [this](double usage, double limit) -> std::optional<double> {
    if (!(limit > 0) || !std::isfinite(usage) || usage < 0) {
      cgroup_problem_ = "its memory cgroup has no limit";
      return std::nullopt;
    }
    cgroup_problem_.clear();
    return 100.0 * usage / limit;
  };
  auto cg = CgroupReader().ReadMemory(pid_);
  if (cg) {
    return percent(static_cast<double>(cg->usage_bytes),
                   cg->limit_bytes ? static_cast<double>(*cg->limit_bytes) : 0);
  }
  if (cg.error().code() != EXDEV) {
    cgroup_problem_ = cg.error().message();
    return std::nullopt;
  }
  // A sidecar's cgroup mount shows its own cgroup only; a target that
  // embeds libcppdiag reports its cgroup's usage and limit (process-info).
  // Its numbers are checked as any peer's.
  // Its socket is looked up once, not at every poll; again after a failed call.
  if (!socket_) {
    auto target = FindTarget(pid_);
    if (!target) {
      cgroup_problem_ = cg.error().message() + "; and it embeds no libcppdiag to ask";
      return std::nullopt;
    }
    socket_ = target->endpoint;
  }
  auto info = ipc::Call(*socket_, ipc::Command::kProcessInfo, nlohmann::json::object(),
                        std::chrono::seconds(2));
  if (!info) {
    socket_.reset();
    cgroup_problem_ = cg.error().message() + "; asking it failed: " + info.error().message();
    return std::nullopt;
  }
  const nlohmann::json cgroup = info->value("cgroup", nlohmann::json::object());
  const nlohmann::json usage =
      cgroup.is_object() ? cgroup.value("usage_bytes", nlohmann::json()) : nlohmann::json();
  const nlohmann::json limit =
      cgroup.is_object() ? cgroup.value("limit_bytes", nlohmann::json()) : nlohmann::json();
  if (!usage.is_number_unsigned() || !limit.is_number_unsigned()) {
    cgroup_problem_ = "its memory cgroup reports no usage and limit";
    return std::nullopt;
  }
  return percent(usage.get<double>(), limit.get<double>());
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
