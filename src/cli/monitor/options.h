// What `cppdiag monitor` was asked (monitor_command.cc parses it; docs/cli/monitor.md).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cppdiag::cli::monitor {

struct MonitorOptions {
  // Which processes: exactly one of these.
  pid_t pid = 0;
  std::string wait_name;  // -w: every process of that name, as it appears
  pid_t pgid = 0;         // --pgid: every process of the group

  // Polled triggers.
  std::vector<std::string> memory;  // sizes, each fired once, in ascending order
  std::string memory_below;         // a size
  std::optional<double> cgroup_pct;
  std::optional<double> cpu_pct, cpu_below_pct;
  bool of_quota = false;
  std::optional<int64_t> threads, fds;
  // Traced triggers (the monitor is the target's tracer for the whole watch).
  std::vector<std::string> signals;
  bool exit = false;
  // Dumps -n times, -s seconds apart.
  bool timer = false;

  int count = 1;
  bool count_given = false;
  double seconds = 0;  // consecutive seconds a condition holds; --timer: the interval
  bool seconds_given = false;
  std::chrono::nanoseconds cooldown{0};
  std::chrono::nanoseconds poll = std::chrono::milliseconds(100);
  std::string dir;
  std::string type;
  std::string action = "dump";  // dump, heap-snapshot, exec:CMD
};

}  // namespace cppdiag::cli::monitor
