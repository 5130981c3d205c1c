// The pre-OOM watchdog: a thread that follows the memory usage of the
// process's cgroup and acts once, when usage crosses a percentage of the
// limit, before the kernel's OOM killer sends the SIGKILL no handler can
// catch.
//
// How it learns of usage: on cgroup v1 the kernel's usage threshold
// notification (an eventfd registered in cgroup.event_control) wakes it the
// moment usage crosses the threshold; where that cannot be registered (v2,
// or a read-only cgroupfs in a container) it polls the usage file every few
// milliseconds, which costs a few microseconds per read.
//
//   OomWatchdog dog({.threshold_percent = 85, .cgroup_version = 1,
//                    .cgroup_dir = dir, .limit_bytes = limit,
//                    .on_cross = [](uint64_t usage, uint64_t limit) { ... }});
//   if (auto s = dog.Start(); !s) ...
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "common/scoped_fd.h"
#include "common/status.h"

namespace cppdiag {

struct OomWatchdogOptions {
  double threshold_percent = 0;  // (0, 100]
  int cgroup_version = 0;        // 1 or 2
  std::string cgroup_dir;        // from CgroupReader::FindMemoryCgroup
  uint64_t limit_bytes = 0;      // the effective limit
  std::chrono::milliseconds poll_interval{5};
  // Use the kernel's threshold notification where it exists (v1); false polls.
  bool use_kernel_events = true;
  // Called once, on the watchdog's thread, when usage >= threshold.
  std::function<void(uint64_t usage, uint64_t limit)> on_cross;
};

class OomWatchdog {
 public:
  explicit OomWatchdog(OomWatchdogOptions options);
  ~OomWatchdog();  // stops the thread
  OomWatchdog(const OomWatchdog&) = delete;
  OomWatchdog& operator=(const OomWatchdog&) = delete;

  Status Start();
  void Stop();

  // For the child of fork(): closes the watchdog's descriptors (they are the
  // parent's: writing the stop eventfd would stop the parent's watchdog)
  // without stopping or joining a thread, which exists only in the parent.
  // The object must then never be destroyed (leak it). Async-signal-safe.
  void AbandonInForkedChild();

  uint64_t threshold_bytes() const { return threshold_bytes_; }
  bool fired() const { return fired_.load(); }
  // "eventfd" or "poll": how usage is followed.
  const char* mechanism() const { return event_fd_.is_valid() ? "eventfd" : "poll"; }

 private:
  void Run();
  bool RegisterThresholdEvent();

  OomWatchdogOptions options_;
  uint64_t threshold_bytes_ = 0;
  ScopedFd usage_fd_;
  ScopedFd event_fd_;  // v1 threshold notification
  ScopedFd stop_fd_;   // eventfd written by Stop()
  std::thread thread_;
  std::atomic<bool> fired_{false};
};

}  // namespace cppdiag
