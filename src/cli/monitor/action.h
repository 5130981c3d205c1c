// What `cppdiag monitor` does when a trigger fires (--action): write a dump
// (through the target's socket when it embeds libcppdiag, else with
// ptrace), and with exec:CMD run a command with its path.
//
//   auto done = RunAction(process, firing, options, &stop);
//   if (done) ... done->path, done->detail;
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/monitor/options.h"
#include "cli/monitor/triggers.h"
#include "common/status.h"
#include "diag/dump/ptrace_attach.h"

namespace cppdiag::cli::monitor {

// The process a firing is about.
struct ActionTarget {
  pid_t pid = 0;
  std::string comm;
  int index = 0;  // this firing's number for the process (names the file)
  // Not empty: the monitor's ptrace session (--signal, --exit) holds these
  // threads stopped; the dump is written with ptrace from them, never through
  // the socket (the target's self-dump cannot run while it is ptrace-stopped).
  std::vector<dump::StoppedThread> adopted;
};

struct ActionDone {
  std::string path;    // the dump or profile written (as its writer sees it)
  std::string detail;  // "mini, 208.0 KiB, target paused 1.2 ms"
};

// Writes the dump of a firing (with --action heap-snapshot: the target's
// heap snapshot, over its socket, into -o DIR); `stop` is polled by a ptrace
// dump (true: interrupted, no file left).
Result<ActionDone> WriteDump(const ActionTarget& t, const Firing& f, const MonitorOptions& o,
                             const std::atomic<bool>* stop);

// Whether `pid` has a diagnostic socket (libcppdiag), as --action
// heap-snapshot needs; the error says so in one line.
Result<void> HasLibcppdiag(pid_t pid);

// --action exec:CMD, once the dump is written: CMD split into words as a
// shell would (blanks, '...' and "..." quoting, backslash), with nothing
// expanded and no shell run (write `sh -c '...'` for one); every `{}` word
// part is replaced by the dump's path, or, with none, the path is the last
// argument. The command also gets CPPDIAG_DUMP_PATH, CPPDIAG_TRIGGER and
// CPPDIAG_PID in its environment. Returns its wait status description
// ("exit status 0", "killed by SIGTERM"); an error when it cannot be run.
// Once `stop` is true (the monitor's Ctrl-C) the command gets SIGTERM, and
// is waited for.
Result<std::string> RunExecAction(const std::string& command, const std::string& path,
                                  const Firing& f, pid_t pid, bool* succeeded,
                                  const std::atomic<bool>* stop = nullptr);

// The words of `command` (as RunExecAction splits it); an error for an
// unterminated quote or an empty command.
Result<std::vector<std::string>> SplitCommand(const std::string& command);

}  // namespace cppdiag::cli::monitor
