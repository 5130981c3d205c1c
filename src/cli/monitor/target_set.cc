#include "cli/monitor/target_set.h"

#include <unistd.h>

#include "common/proc.h"

namespace cppdiag::cli::monitor {

pid_t ProcessGroupOf(pid_t pid, const std::string& proc_root) {
  auto stat = ReadProcStat(pid, proc_root);
  return stat ? stat->pgrp : -1;
}

bool TargetSet::NameMatches(pid_t pid, const std::string& comm) const {
  // comm is cut to 15 bytes (TASK_COMM_LEN): a longer NAME matches its first 15.
  if (comm == m_.name || (m_.name.size() > 15 && comm == m_.name.substr(0, 15))) return true;
  auto argv = ReadCmdline(pid, proc_root_);
  if (!argv || argv->empty()) return false;
  const std::string& arg0 = argv->front();
  size_t slash = arg0.rfind('/');
  return (slash == std::string::npos ? arg0 : arg0.substr(slash + 1)) == m_.name;
}

std::vector<TargetSet::Found> TargetSet::Scan() {
  std::vector<Found> found;
  auto pids = ListPids(proc_root_);
  if (!pids) return found;
  const pid_t self = ::getpid();
  size_t matching = 0;
  std::set<OtherKey> still_other;
  std::set<std::pair<pid_t, uint64_t>> still_seen;
  for (pid_t pid : *pids) {
    if (pid == self) continue;
    auto stat = ReadProcStat(pid, proc_root_);
    if (!stat || stat->state == 'Z' || stat->state == 'X') continue;
    const std::pair<pid_t, uint64_t> key{pid, stat->start_time_ticks};
    bool match = false;
    if (m_.pgid != 0) {
      match = stat->pgrp == m_.pgid;
    } else if (seen_.count(key) != 0) {
      match = true;
    } else {
      // A process of another name is not read again until it execs (exec
      // keeps its pid and start time, and changes its comm): a shell's
      // child that becomes NAME is found.
      OtherKey other{pid, stat->start_time_ticks, stat->comm};
      match = not_match_.count(other) == 0 && NameMatches(pid, stat->comm);
      if (!match) still_other.insert(std::move(other));
    }
    if (!match) continue;
    ++matching;
    still_seen.insert(key);
    if (seen_.insert(key).second) found.push_back({pid, stat->start_time_ticks, stat->comm});
  }
  // Forget processes that are gone: a (pid, start time) never comes back.
  not_match_ = std::move(still_other);
  seen_ = std::move(still_seen);
  matching_now_ = matching;
  return found;
}

std::string TargetSet::Describe() const {
  if (m_.pgid != 0) return "process group " + std::to_string(m_.pgid);
  return "processes named " + m_.name;
}

}  // namespace cppdiag::cli::monitor
