// The one line `cppdiag monitor` prints for every firing, on stdout:
//
//   <UTC time> <pid> <trigger> <value> [<op> <threshold>] <path> (<detail>)
//   <UTC time> <pid> <trigger> <value> [<op> <threshold>] failed: <reason>
//
// e.g. "2026-12-02T15:47:48Z 15190 threads 6 >= 6 /tmp/x/core.t.15190.1796226468.threads.1
// (mini, 208.0 KiB, target paused 1.2 ms, fork)". Anything the target
// supplied (a path) is escaped for the terminal.
#pragma once

#include <sys/types.h>

#include <string>

#include "cli/monitor/triggers.h"

namespace cppdiag::cli::monitor {

// "2026-12-02T15:47:48Z".
std::string UtcNow();

// What fired, as the line says it: "cpu 93.1% >= 90%", "timer 1/3".
std::string FiringText(const Firing& f);

// The line, without its newline; `path` empty: `failure` is said instead.
std::string FiringLine(pid_t pid, const Firing& f, const std::string& path,
                       const std::string& detail, const std::string& failure);

// Prints a line on stdout and flushes it, whole (from any thread).
void PrintLine(const std::string& line);

}  // namespace cppdiag::cli::monitor
