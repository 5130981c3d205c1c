// The fork snapshot of a ptrace dump: making a stopped target run one
// syscall of ours, to take a copy-on-write copy of itself (clone) and later
// to reap that copy (wait4).
//
// Injection (InjectSyscall), on a thread we hold in a ptrace-stop:
//   1. save its registers;
//   2. point rip at a `syscall` instruction already in its text (its [vdso]
//      has some, else libc), put the syscall's number and arguments in rax,
//      rdi, rsi, rdx, r10, r8, r9, and orig_rax = -1 (so the kernel does not
//      "restart" the syscall the thread was stopped in over ours);
//   3. PTRACE_SYSCALL to the syscall-entry stop, again to the exit stop
//      (a clone reports PTRACE_EVENT_CLONE in between: the child's pid);
//   4. put the registers back, restarting the interrupted syscall as the
//      kernel would have when no signal handler runs (-ERESTARTSYS,
//      -ERESTARTNOHAND, -ERESTARTNOINTR: rip back over the syscall
//      instruction, rax = orig_rax; -ERESTART_RESTARTBLOCK: restart_syscall).
//
// The clone (InjectFork) has no exit signal, so the target's SIGCHLD handler
// never hears of it and a waitpid(-1) of the target does not reap it. The
// child is auto-attached (PTRACE_O_TRACECLONE) and so stopped at its birth,
// before it runs any of the target's code; it is then given
// PTRACE_O_EXITKILL, so it dies if the tool dies. Its memory is the target's
// at the fork. KillInjectedChild kills it, collects it as its tracer, then
// injects wait4 into a target thread so that no zombie is left behind.
//
// Not async-signal-safe; for the cppdiag tool.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>

#include "common/status.h"

namespace cppdiag::dump {

// The address of a `syscall` instruction (0f 05) in `pid`'s [vdso], else in
// an executable mapping of libc, else of any executable file mapping.
Result<uint64_t> FindSyscallInstruction(pid_t pid);

// Runs syscall `nr` in the stopped thread `tid` (one we hold, not in a
// group-stop and with no pending signal) and restores its registers. Returns
// the syscall's result (rax: a value, or -errno). `*child`, when not null,
// gets the pid of a process the syscall created (PTRACE_EVENT_CLONE), or 0.
// When a signal arrives before the syscall runs, the thread is left in its
// signal-delivery-stop with its registers restored, `*signal` is set, and
// EINTR is returned: let it go with that signal.
Result<long> InjectSyscall(pid_t tid, uint64_t syscall_at, long nr,
                           const std::array<uint64_t, 6>& args, pid_t* child, int* signal);

// clone() with no exit signal in `tid`; returns the child's pid, stopped and
// traced by us with PTRACE_O_EXITKILL. `*signal` as InjectSyscall's.
Result<pid_t> InjectFork(pid_t tid, uint64_t syscall_at, int* signal);

// Kills `child`, collects it, and reaps its zombie from `target` (a wait4
// injected into its thread `tid`, stopped and let go just for that).
Status KillInjectedChild(pid_t target, pid_t tid, pid_t child, uint64_t syscall_at);

}  // namespace cppdiag::dump
