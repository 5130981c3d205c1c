#include "cli/monitor/cgroup_event.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmath>

#include "common/cgroup.h"
#include "common/io.h"

namespace cppdiag::cli::monitor {

Result<std::unique_ptr<CgroupThresholdEvent>> CgroupThresholdEvent::Arm(pid_t pid, double percent) {
  CPPDIAG_ASSIGN_OR_RETURN(CgroupMemory cg, CgroupReader().ReadMemory(pid));
  if (cg.version != 1) {
    return Error(ENOTSUP, "", "cgroup v2 has no usage threshold notification");
  }
  if (!cg.limit_bytes || *cg.limit_bytes == 0) {
    return Error(EINVAL, "", "its memory cgroup has no limit");
  }
  std::unique_ptr<CgroupThresholdEvent> e(new CgroupThresholdEvent);
  // The usage is this cgroup's, the limit may be an ancestor's: the trigger
  // compares the same two numbers.
  e->threshold_bytes_ =
      static_cast<uint64_t>(std::ceil(static_cast<double>(*cg.limit_bytes) * percent / 100.0));
  CPPDIAG_ASSIGN_OR_RETURN(e->usage_, OpenFile(cg.dir + "/memory.usage_in_bytes", O_RDONLY));
  e->event_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!e->event_.is_valid()) return Error::FromErrno("eventfd", "cgroup threshold event");
  CPPDIAG_ASSIGN_OR_RETURN(ScopedFd control, OpenFile(cg.dir + "/cgroup.event_control", O_WRONLY));
  const std::string line = std::to_string(e->event_.get()) + " " + std::to_string(e->usage_.get()) +
                           " " + std::to_string(e->threshold_bytes_);
  CPPDIAG_RETURN_IF_ERROR(
      WriteAll(control.get(), line.data(), line.size(), "cgroup.event_control"));
  return e;
}

void CgroupThresholdEvent::Drain() const {
  uint64_t count;
  (void)!::read(event_.get(), &count, sizeof count);  // non-blocking: EAGAIN when none
}

}  // namespace cppdiag::cli::monitor
