// A CPU quota for a test's process (needs root): under cgroup v1 a cgroup of
// its own in the cpu hierarchy, next to this process's; under v2 the quota is
// written into the (memory) ScopedCgroup the process already runs in, since
// a v2 process belongs to one cgroup only.
#pragma once

#include <sys/types.h>

#include <string>

namespace cppdiag::testing {

class ScopedCpuQuota {
 public:
  // `v2_dir`: the ScopedCgroup directory to use under v2.
  ScopedCpuQuota(uint64_t quota_us, uint64_t period_us, const std::string& v2_dir);
  ~ScopedCpuQuota();
  ScopedCpuQuota(const ScopedCpuQuota&) = delete;
  ScopedCpuQuota& operator=(const ScopedCpuQuota&) = delete;

  bool ok() const { return !dir_.empty(); }
  const std::string& why_not() const { return why_not_; }
  // Moves every thread of `pid` under the quota (v1; v2: already there).
  bool Attach(pid_t pid);

 private:
  int version_ = 0;
  bool owned_ = false;  // created by us (v1): removed on destruction
  std::string dir_;
  std::string why_not_;
};

}  // namespace cppdiag::testing
