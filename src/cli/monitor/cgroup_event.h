// The wake-up of --cgroup-memory: a descriptor that becomes readable the
// moment a process's memory cgroup usage crosses a number of bytes, so the
// monitor samples at once instead of at its next poll.
//
// cgroup v1 only: the memory controller's usage threshold notification (an
// eventfd registered in cgroup.event_control against memory.usage_in_bytes).
// The kernel signals a crossing in either direction; it is only a reason to
// sample, never a firing by itself. Closing the eventfd (the destructor)
// removes the registration. cgroup v2 has no usage threshold notification
// (memory.events reports high/max/oom, PSI reports stalls, neither a usage
// of our choosing), so Arm fails with ENOTSUP there and the monitor polls.
//
//   auto event = CgroupThresholdEvent::Arm(pid, 80.0);
//   if (!event) ... poll, say event.error() once
//   pollfd p{(*event)->fd(), POLLIN, 0}; ... (*event)->Drain(); then sample
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "common/scoped_fd.h"
#include "common/status.h"

namespace cppdiag::cli::monitor {

class CgroupThresholdEvent {
 public:
  // Registers a notification at `percent` of the effective limit of the
  // memory cgroup of `pid`. Errors: ENOTSUP (v2), EXDEV (the cgroup is out
  // of this mount namespace's view), EINVAL (no limit), or what opening or
  // writing cgroup.event_control gave (EROFS, EACCES in a container).
  static Result<std::unique_ptr<CgroupThresholdEvent>> Arm(pid_t pid, double percent);

  int fd() const { return event_.get(); }
  uint64_t threshold_bytes() const { return threshold_bytes_; }
  // Reads the eventfd's count, so poll() blocks again until the next crossing.
  void Drain() const;

 private:
  CgroupThresholdEvent() = default;

  ScopedFd usage_;  // memory.usage_in_bytes: held open while registered
  ScopedFd event_;  // the eventfd the kernel signals
  uint64_t threshold_bytes_ = 0;
};

}  // namespace cppdiag::cli::monitor
