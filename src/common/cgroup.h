// The memory cgroup of a process, and its CPU quota, under cgroup v1 or v2,
// as seen from inside or outside a container.
//
// How the directory is found: /proc/<pid>/cgroup names the cgroup path (the
// host's path inside a container without a cgroup namespace), and
// /proc/self/mountinfo says where each hierarchy is mounted and which of its
// directories the mount shows at its root. The cgroup directory is the mount
// point plus the path with that root stripped; a path outside the mount's root
// (a container that sees only its own cgroup) maps to the mount point itself.
//
// On a hybrid host (v1 controllers with an empty v2 hierarchy mounted beside
// them) the v1 memory controller wins, since the v2 hierarchy then holds no
// memory files.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace cppdiag {

struct CgroupMemory {
  int version = 0;           // 1 or 2
  std::string dir;           // the cgroup's directory in the cgroup filesystem
  uint64_t usage_bytes = 0;  // memory.current / memory.usage_in_bytes (page cache included)
  // The effective limit: the smallest limit of this cgroup and its visible
  // ancestors; nullopt when there is none.
  std::optional<uint64_t> limit_bytes;
};

// The CPU bandwidth limit (CFS quota) that applies to a process.
struct CgroupCpu {
  int version = 0;  // 1 or 2
  std::string dir;  // the cgroup's directory in the cpu hierarchy
  // The effective quota in CPUs (quota / period: 0.5 = half a core), the
  // smallest of this cgroup and its visible ancestors; nullopt when none.
  std::optional<double> quota_cores;
  // The quota and period (microseconds) of the cgroup that sets quota_cores.
  uint64_t quota_us = 0;
  uint64_t period_us = 0;
};

// Parses cgroup v2's cpu.max ("max 100000", "50000 100000"): the quota and
// period in microseconds, nullopt quota for "max". Fails on malformed text.
Result<std::pair<std::optional<uint64_t>, uint64_t>> ParseCpuMax(std::string_view text);

class CgroupReader {
 public:
  // `root` prefixes every absolute path read ("" on a live system; a fixture
  // directory in tests).
  explicit CgroupReader(std::string root = "") : root_(std::move(root)) {}

  // Finds the memory cgroup directory of `pid` (0 = this process).
  Result<std::pair<int, std::string>> FindMemoryCgroup(pid_t pid = 0) const;

  // Reads usage and effective limit of the memory cgroup of `pid`. EXDEV
  // when that cgroup is outside this mount namespace's view of the
  // hierarchy (the app's cgroup seen from a sidecar container).
  Result<CgroupMemory> ReadMemory(pid_t pid = 0) const;

  // Reads usage only, from a directory FindMemoryCgroup returned (the cheap
  // call for a watchdog's loop).
  Result<uint64_t> ReadUsage(int version, const std::string& dir) const;

  // Reads the CPU quota of `pid` (0 = this process): v2 cpu.max, v1
  // cpu.cfs_quota_us / cpu.cfs_period_us (the cpu controller's hierarchy,
  // found through mountinfo as for memory), up the tree while the directory
  // stays inside the mount. Fails only when no cpu hierarchy is found.
  Result<CgroupCpu> ReadCpu(pid_t pid = 0) const;

 private:
  struct Found {
    int version = 0;
    std::string dir;          // the cgroup's directory
    std::string mount_point;  // the hierarchy's mount point (dir is under it)
  };
  struct Paths {
    std::string v1, v2;  // as /proc/<pid>/cgroup gives them
    bool have_v1 = false, have_v2 = false;
  };
  Result<Found> Find(pid_t pid, const std::string& controller) const;
  Result<Paths> ReadPaths(pid_t pid, const std::string& controller) const;

  std::string root_;
};

}  // namespace cppdiag
