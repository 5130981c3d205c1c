// The loop of `cppdiag monitor`: one thread that waits (poll) for the next
// sample time, a stop signal or, when it traces targets, their ptrace
// events; samples every watched process, fires its triggers and writes
// its dumps. Returns the command's exit status: 0 when every dump asked
// for was written, 1 otherwise (after one line on stderr).
#pragma once

#include "cli/monitor/options.h"

namespace cppdiag::cli::monitor {

int RunMonitor(const MonitorOptions& options);

}  // namespace cppdiag::cli::monitor
