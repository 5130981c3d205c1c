// Asking a target to write its own dump over its diagnostic socket, and
// telling the user how it went: shared by `dump collect` and `auto-collect`.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "cli/discovery.h"
#include "cli/terminal.h"
#include "common/status.h"

namespace cppdiag::cli {

struct DumpRequestOptions {
  std::string path;  // in the target's filesystem; empty: its CPPDIAG_DUMP_NAME
  std::string type;  // full, heap, mini, triage (or 4, 2, 1, 3); empty: the target's
  bool overwrite = false;
  bool quiet = false;  // print nothing (cppdiag monitor prints its own line)
  // What fired (cppdiag monitor's "cpu 93.1% >= 90%"): the dump's note
  // reason, and a trigger marker on the target's running trace.
  std::string trigger;
};

// What the target reported.
struct DumpOutcome {
  std::string path;  // as the target sees it
  std::string type;
  uint64_t bytes = 0;
  double pause_ms = 0;  // how long the target's threads were paused
  std::string mode;     // "fork", "stop"...
};

// Sends the dump request and, when the target has written the dump, prints
// "Writing <type> dump to <path>" and "Complete: <size> in <ms> (threads
// paused <ms>, <mode>)" on stdout (nothing with `quiet`). On failure prints nothing and returns an
// error whose message is one line: "dump of process <pid> failed: <reason>",
// or, when the target exited meanwhile, "the target (pid <pid>) exited
// during the dump (killed by SIGKILL)" (how, when it can still be read).
//
//   auto target = FindTarget(pid);
//   if (!target) return Fail(target.error().message());
//   auto dump = RequestDump(*target, {.type = "full"});
//   if (!dump) return Fail(dump.error().message());
Result<DumpOutcome> RequestDump(const DiagTarget& target, const DumpRequestOptions& options);

// A dump's progress on the terminal's progress line (nothing when stderr is
// not a terminal): percent, MiB written, elapsed time.
class DumpProgress {
 public:
  DumpProgress();
  void Update(uint64_t written, uint64_t total);  // total 0: not known yet
  void Clear() { line_.Clear(); }

 private:
  ProgressLine line_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace cppdiag::cli
