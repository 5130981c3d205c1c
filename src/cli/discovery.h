// Finding processes that run libcppdiag, from any container that shares
// their PID namespace: through /proc/<pid>/root and the TMPDIR in
// /proc/<pid>/environ, so no shared /tmp and no manual TMPDIR are needed;
// the abstract socket (shared network namespace) is the fallback.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"
#include "diag/ipc/client.h"

namespace cppdiag::cli {

struct DiagTarget {
  pid_t pid = 0;     // as this tool sees it
  pid_t ns_pid = 0;  // as the target sees itself (its socket is named by it)
  std::string name;  // comm
  std::vector<std::string> argv;
  std::string command_line;  // argv joined by spaces
  ipc::Endpoint endpoint;
};

// Every process with a diagnostic socket, ascending by pid (this one excluded).
// `unreadable`, if given, receives how many processes could not be inspected
// (permission denied: another user's process, or not dumpable) and had no
// abstract socket either.
std::vector<DiagTarget> FindTargets(const std::string& proc_root = "/proc",
                                    int* unreadable = nullptr);

// The target with this pid, or an error that says why it cannot be reached.
Result<DiagTarget> FindTarget(pid_t pid, const std::string& proc_root = "/proc");

}  // namespace cppdiag::cli
