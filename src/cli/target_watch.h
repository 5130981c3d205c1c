// Telling a target that died from a request that failed: a pidfd taken
// before the request (so a pid reused meanwhile is not taken for the
// target) and the target's start time.
//
//   TargetWatch watch(target.pid);
//   auto reply = ipc::Call(...);
//   if (!reply && watch.Exited(std::chrono::seconds(2))) {
//     ... "the target exited (" + watch.HowItEnded() + ")" ...
//   }
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "common/scoped_fd.h"

namespace cppdiag::cli {

class TargetWatch {
 public:
  // Starts watching `pid` (as this tool sees it), from now.
  explicit TargetWatch(pid_t pid);

  // Whether the target has exited since (or its pid names another process
  // now), waiting up to `grace` for an exit under way: a dying process's
  // sockets close before the kernel reports it gone.
  bool Exited(std::chrono::milliseconds grace) const;

  // How it ended, while that can still be read (it is a zombie, not yet
  // reaped by its parent): "killed by SIGKILL", "exit status 3"; else "".
  std::string HowItEnded() const;

  // "the target (pid N) exited during <what>[ (how)]": one line for Fail.
  std::string ExitedDuring(const std::string& what) const;

 private:
  pid_t pid_;
  uint64_t start_ticks_ = 0;  // 0: unknown
  ScopedFd pidfd_;            // invalid before Linux 5.3: /proc is polled
};

}  // namespace cppdiag::cli
