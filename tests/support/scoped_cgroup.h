// A real memory cgroup for a test (needs root): created under this process's
// own memory cgroup (v1 or v2, whichever holds the memory controller), with a
// limit, removed (after killing what is left in it) on destruction.
#pragma once

#include <cstdint>
#include <string>

namespace cppdiag::testing {

class ScopedCgroup {
 public:
  // `limit_bytes` 0 = no limit. Check ok() before use: a machine without a
  // writable memory controller yields !ok() and a reason (tests then skip).
  explicit ScopedCgroup(uint64_t limit_bytes, bool swap_off = true);
  ~ScopedCgroup();
  ScopedCgroup(const ScopedCgroup&) = delete;
  ScopedCgroup& operator=(const ScopedCgroup&) = delete;

  bool ok() const { return !dir_.empty(); }
  const std::string& why_not() const { return why_not_; }
  int version() const { return version_; }
  const std::string& dir() const { return dir_; }
  std::string procs_file() const { return dir_ + "/cgroup.procs"; }
  // True if the kernel OOM-killed something in this cgroup.
  uint64_t oom_kills() const;

 private:
  int version_ = 0;
  std::string dir_;
  std::string why_not_;
};

}  // namespace cppdiag::testing
