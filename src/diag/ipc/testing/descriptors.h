// Descriptor and CPU helpers for the diagnostic server's accept-loop tests:
// run this process out of descriptors, find the server's listener, measure
// whether a waiting process spins.
#pragma once

#include <sys/resource.h>

#include <string>
#include <vector>

#include "common/scoped_fd.h"

namespace cppdiag::ipc::testing {

// The CPU this process burns while it waits `ms` for `fd` to become readable
// (or just waits, with fd -1), as a fraction of the time waited (a ratio of
// two clocks: about 0 for a process that sleeps, about 1 for one that spins).
// `readable`, if given, says whether `fd` became readable.
double CpuShareWhileWaiting(int fd, int ms, bool* readable = nullptr);

// The descriptor of this process that listens on `path` (-1 if none).
int ListenerFd(const std::string& path);

// Takes every free descriptor below 64, so that the next one is 64 or more.
std::vector<ScopedFd> FillDescriptorsBelow64();

// Lowers RLIMIT_NOFILE's soft limit to `soft` until Restore() or the end.
class ScopedFdLimit {
 public:
  explicit ScopedFdLimit(rlim_t soft) {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit low{soft, saved_.rlim_max};
    ok_ = ::setrlimit(RLIMIT_NOFILE, &low) == 0;
  }
  ~ScopedFdLimit() { Restore(); }
  void Restore() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  bool ok_ = false;
};

}  // namespace cppdiag::ipc::testing
