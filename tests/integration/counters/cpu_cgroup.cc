#include "integration/counters/cpu_cgroup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/cgroup.h"
#include "common/io.h"
#include "support/poll.h"

namespace cppdiag::testing {

ScopedCpuQuota::ScopedCpuQuota(uint64_t quota_us, uint64_t period_us, const std::string& v2_dir) {
  if (::geteuid() != 0) {
    why_not_ = "needs root to set a CPU quota";
    return;
  }
  auto self = CgroupReader().ReadCpu();
  if (!self) {
    why_not_ = self.error().message();
    return;
  }
  version_ = self->version;
  if (version_ == 2) {
    std::string value = std::to_string(quota_us) + " " + std::to_string(period_us);
    if (!WriteStringToFile(v2_dir + "/cpu.max", value).ok()) {
      // The cpu controller may not be enabled for the parent's children yet.
      std::string parent = v2_dir.substr(0, v2_dir.rfind('/'));
      (void)WriteStringToFile(parent + "/cgroup.subtree_control", "+cpu");
      if (auto s = WriteStringToFile(v2_dir + "/cpu.max", value); !s) {
        why_not_ = s.error().message();
        return;
      }
    }
    dir_ = v2_dir;
    return;
  }
  static std::atomic<int> counter{0};
  std::string dir = self->dir + "/cppdiag-counters-test-" + std::to_string(::getpid()) + "-" +
                    std::to_string(counter++);
  if (::mkdir(dir.c_str(), 0755) != 0) {
    why_not_ = "cannot create " + dir + ": " + std::strerror(errno);
    return;
  }
  owned_ = true;
  dir_ = dir;
  if (auto s = WriteStringToFile(dir + "/cpu.cfs_period_us", std::to_string(period_us)); !s) {
    why_not_ = s.error().message();
  } else if (auto q = WriteStringToFile(dir + "/cpu.cfs_quota_us", std::to_string(quota_us)); !q) {
    why_not_ = q.error().message();
  }
  if (!why_not_.empty()) {
    ::rmdir(dir.c_str());
    dir_.clear();
  }
}

bool ScopedCpuQuota::Attach(pid_t pid) {
  if (version_ == 2) return true;
  return WriteStringToFile(dir_ + "/cgroup.procs", std::to_string(pid)).ok();
}

ScopedCpuQuota::~ScopedCpuQuota() {
  if (!owned_ || dir_.empty()) return;
  // The test's processes are gone by now (they are declared after us); a
  // straggler still exiting keeps the directory busy for a moment.
  PollUntil([&] { return ::rmdir(dir_.c_str()) == 0 || errno != EBUSY; }, std::chrono::seconds(2),
            std::chrono::milliseconds(20));
}

}  // namespace cppdiag::testing
