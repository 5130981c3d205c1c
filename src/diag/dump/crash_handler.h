// The crash handler (CPPDIAG_ENABLE_DUMP_ON_CRASH=1): on SIGSEGV, SIGBUS,
// SIGILL, SIGFPE and SIGABRT, and on std::terminate (an uncaught exception
// such as std::bad_alloc: the handler logs its type and what(), then aborts,
// and the SIGABRT handler dumps), it writes one self-dump (self_dump.h) with
// reason "crash", then hands the signal on to what the program had installed
// before InstallCrashHandler:
//   - SIG_DFL (the usual case): the default action is restored and the
//     signal takes the process down, so the exit status (and a container's
//     termination reason) still tells what happened;
//   - a handler of the program's (or of a library loaded before us): it is
//     called as the kernel would have called it (sa_sigaction(sig, info,
//     ucontext) or sa_handler(sig), with its sa_mask blocked, SA_RESETHAND
//     and SA_NODEFER honoured); if it returns, the handler returns too (a
//     fault it mended is retried);
//   - SIG_IGN: a signal that was sent is ignored after the dump; a fault is
//     not (the kernel forces the default action on it).
// Likewise a std::terminate handler set before ours runs after the dump. The
// signals that follow (a second crash, a fault the program's handler mends)
// go straight on: one dump per process.
//
// A handler installed after ours replaces it; the dump then happens only if
// that handler chains to the one it replaced (well-behaved ones do). Calling
// InstallCrashHandler again updates the options and does not take the
// signals back.
//
// It logs with the raw logger, on stderr:
//   cppdiag: writing heap dump to /dumps/core.app.42.1700000000 (reason: crash, signal SIGSEGV)
//   cppdiag: dump complete: /dumps/core.app.42.1700000000 (123.4 MiB)
// or
//   cppdiag: no dump written: open /dumps/core.app.42.1700000000: EACCES (permission denied)
//
// Only one dump per process: a crash in a second thread waits for the first
// thread's dump, then goes on as above; a crash inside the dump itself gives
// up at once and takes the default action (handing a fault of ours to the
// program's handler would only repeat it). The handlers run on an alternate signal stack: the main
// thread's is installed here; other threads get one by calling
// InstallAltStackForCurrentThread (without it their handler runs on their own
// stack, which is fine for every crash but a stack overflow).
//
//   cppdiag::dump::PrepareSelfDump(config);   // first
//   cppdiag::dump::InstallCrashHandler();     // on the main thread, at start
//
// Both functions run in normal context. The signal handlers are
// async-signal-safe (crash_handler.cc says so at the top).
#pragma once

#include <cstddef>
#include <optional>

#include "common/status.h"
#include "diag/dump/dump_type.h"

namespace cppdiag::dump {

struct CrashHandlerOptions {
  std::optional<DumpType> type;        // default: the self-dump's default type
  size_t alt_stack_bytes = 256 << 10;  // for the calling thread (SA_ONSTACK)
  bool handle_terminate = true;        // std::set_terminate as well
};

// Installs the handlers. Requires PrepareSelfDump (fails with EINVAL
// otherwise). Calling it again updates the options.
Status InstallCrashHandler(const CrashHandlerOptions& options = {});

// Gives the calling thread an alternate signal stack of `bytes` (0: the size
// InstallCrashHandler used), unless it has one at least that big. Threads
// created after InstallCrashHandler call it at their start to have stack
// overflows dumped too. The stack lives until the process ends.
Status InstallAltStackForCurrentThread(size_t bytes = 0);

}  // namespace cppdiag::dump
