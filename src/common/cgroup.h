// The memory cgroup of a process, under cgroup v1 or v2, as seen from inside
// or outside a container.
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

class CgroupReader {
 public:
  // `root` prefixes every absolute path read ("" on a live system; a fixture
  // directory in tests).
  explicit CgroupReader(std::string root = "") : root_(std::move(root)) {}

  // Finds the memory cgroup directory of `pid` (0 = this process).
  Result<std::pair<int, std::string>> FindMemoryCgroup(pid_t pid = 0) const;

  // Reads usage and effective limit of the memory cgroup of `pid`.
  Result<CgroupMemory> ReadMemory(pid_t pid = 0) const;

  // Reads usage only, from a directory FindMemoryCgroup returned (the cheap
  // call for a watchdog's loop).
  Result<uint64_t> ReadUsage(int version, const std::string& dir) const;

 private:
  std::string root_;
};

}  // namespace cppdiag
