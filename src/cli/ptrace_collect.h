// `cppdiag dump collect --ptrace`: the tool dumps a process that has no
// libcppdiag itself, with ptrace (diag/dump/ptrace_dump.h), and writes the
// file in its own filesystem. SIGINT, SIGTERM and SIGHUP during the dump stop
// it cleanly: the target is let go and no file is left.
#pragma once

#include <atomic>
#include <string>

namespace cppdiag::cli {

struct PtraceCollectOptions {
  int pid = 0;
  std::string output;    // empty: core.<comm>.<pid>.<time> in the working directory
  std::string type;      // empty: heap
  std::string snapshot;  // "fork", "stop" or "" (fork when it works)
  bool overwrite = false;
  // The caller's stop flag (it handles the signals then); null: SIGINT,
  // SIGTERM and SIGHUP are caught for the dump's duration.
  std::atomic<bool>* cancel = nullptr;
};

// Prints "Writing <type> dump to <path>", then "Complete: <size> in <ms>
// (target paused <ms>, <mode>[: reason])"; returns 0, or 1 after one line on
// stderr. `*written` (when not null) gets the dump's path.
int CollectWithPtrace(const PtraceCollectOptions& options, std::string* written = nullptr);

}  // namespace cppdiag::cli
