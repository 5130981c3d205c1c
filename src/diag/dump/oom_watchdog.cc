#include "diag/dump/oom_watchdog.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <string>

#include "common/async_safe.h"
#include "common/io.h"
#include "common/thread_signals.h"

namespace cppdiag {
namespace {

// Reads a decimal number from the start of a cgroup file through a kept fd.
bool ReadUsage(int fd, uint64_t* out) {
  char buf[32];
  ssize_t n = HANDLE_EINTR(::pread(fd, buf, sizeof buf - 1, 0));
  return n > 0 && ParseDecimal(std::string_view(buf, static_cast<size_t>(n)), out) > 0;
}

}  // namespace

OomWatchdog::OomWatchdog(OomWatchdogOptions options) : options_(std::move(options)) {
  threshold_bytes_ = static_cast<uint64_t>(static_cast<double>(options_.limit_bytes) *
                                           options_.threshold_percent / 100.0);
}

OomWatchdog::~OomWatchdog() { Stop(); }

Status OomWatchdog::Start() {
  if (options_.threshold_percent <= 0 || options_.threshold_percent > 100) {
    return Error::Invalid("watchdog threshold must be in (0, 100]");
  }
  if (options_.limit_bytes == 0) return Error::Invalid("watchdog needs a cgroup memory limit");
  const char* usage_file =
      options_.cgroup_version == 1 ? "/memory.usage_in_bytes" : "/memory.current";
  CPPDIAG_ASSIGN_OR_RETURN(usage_fd_, OpenFile(options_.cgroup_dir + usage_file, O_RDONLY));
  stop_fd_ = ScopedFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_.is_valid()) return Error::FromErrno("eventfd");
  if (options_.cgroup_version == 1 && options_.use_kernel_events)
    RegisterThresholdEvent();  // polling if refused
  ScopedBlockAsyncSignals block;
  thread_ = std::thread([this] { Run(); });
  return OkStatus();
}

bool OomWatchdog::RegisterThresholdEvent() {
  ScopedFd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!efd.is_valid()) return false;
  auto control = OpenFile(options_.cgroup_dir + "/cgroup.event_control", O_WRONLY);
  if (!control) return false;  // read-only cgroupfs (a container): poll instead
  std::string line = std::to_string(efd.get()) + " " + std::to_string(usage_fd_.get()) + " " +
                     std::to_string(threshold_bytes_);
  if (!WriteAll(control->get(), line.data(), line.size())) return false;
  event_fd_ = std::move(efd);
  return true;
}

void OomWatchdog::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, sizeof one);
  thread_.join();
}

void OomWatchdog::AbandonInForkedChild() {
  for (ScopedFd* fd : {&usage_fd_, &event_fd_, &stop_fd_}) {
    fd->reset();  // closes the child's copy only
  }
}

void OomWatchdog::Run() {
  ::pthread_setname_np(::pthread_self(), "cppdiag-oom");  // for ps -T, gdb and the fork test
  // With the kernel's notification a slow poll is only a safety net.
  int timeout_ms = static_cast<int>(options_.poll_interval.count());
  if (event_fd_.is_valid()) timeout_ms *= 20;
  pollfd fds[2] = {{stop_fd_.get(), POLLIN, 0}, {event_fd_.get(), POLLIN, 0}};
  nfds_t nfds = event_fd_.is_valid() ? 2 : 1;
  for (;;) {
    uint64_t usage = 0;
    if (ReadUsage(usage_fd_.get(), &usage) && usage >= threshold_bytes_) {
      fired_ = true;
      if (options_.on_cross) options_.on_cross(usage, options_.limit_bytes);
      return;
    }
    int n = HANDLE_EINTR(::poll(fds, nfds, timeout_ms));
    if (n > 0 && (fds[0].revents & POLLIN)) return;  // Stop()
    if (n > 0 && (fds[1].revents & POLLIN)) {
      uint64_t count;
      (void)!::read(event_fd_.get(), &count, sizeof count);
    }
  }
}

}  // namespace cppdiag
