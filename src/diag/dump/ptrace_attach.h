// Stopping every thread of another process with ptrace, and letting it go.
//
// PtraceAttachment::Attach seizes (PTRACE_SEIZE) and interrupts
// (PTRACE_INTERRUPT) each thread listed in /proc/<pid>/task, waits for each
// to stop, and lists the threads again until a listing brings no new one:
// once every listed thread is stopped none can start another, so the set is
// then complete. A thread that exits during the attach is dropped; one that
// was receiving a signal stops in its signal-delivery-stop, and that signal
// is handed back when it is let go. The destructor detaches every thread
// (PTRACE_DETACH), so the target runs on whatever happens in between; if the
// tracer itself dies, the kernel detaches them.
//
// When the first seize is refused, DiagnosePtraceRefusal names the reason in
// one line: the process is gone, another tracer holds it (TracerPid), Yama's
// ptrace_scope without CAP_SYS_PTRACE, another uid, or a seccomp filter.
//
//   auto attached = PtraceAttachment::Attach(pid, &cancel);
//   if (!attached) return attached.error();   // "process 42 is already traced by ..."
//   for (const StoppedThread& t : attached->threads()) ... PTRACE_GETREGSET t.tid ...
//
// Not async-signal-safe (allocates); for the cppdiag tool, not the runtime.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <string>
#include <vector>

#include "common/status.h"

namespace cppdiag::dump {

struct StoppedThread {
  pid_t tid = 0;
  // The signal it was about to receive (signal-delivery-stop), re-delivered
  // at detach; 0 when it stopped for our interrupt or in a group-stop.
  int pending_signal = 0;
  // Stopped in a group-stop (the process was stopped by SIGSTOP and the
  // like): it must not be made to run.
  bool group_stop = false;
};

class PtraceAttachment {
 public:
  // Stops every thread of `pid`. `cancel` (may be null) is polled while
  // waiting: once true, Attach detaches what it holds and fails (ECANCELED).
  static Result<PtraceAttachment> Attach(pid_t pid, const std::atomic<bool>* cancel = nullptr);

  // Threads another tracer session of this process already holds stopped
  // (cppdiag monitor's --signal/--exit session): Detach only forgets them,
  // the session lets them go.
  static PtraceAttachment Adopt(pid_t pid, std::vector<StoppedThread> threads);

  // Stops only thread `tid` of `pid` (to make it run one injected syscall
  // while the others run on).
  static Result<PtraceAttachment> AttachThread(pid_t pid, pid_t tid);

  PtraceAttachment(PtraceAttachment&& other) noexcept;
  PtraceAttachment& operator=(PtraceAttachment&&) = delete;
  ~PtraceAttachment() { Detach(); }

  pid_t pid() const { return pid_; }
  // The stopped threads, the thread-group leader first when it is alive.
  const std::vector<StoppedThread>& threads() const { return threads_; }

  // The signal threads()[i] is let go with (one that arrived while it was
  // made to run an injected syscall).
  void set_pending_signal(size_t i, int signal) { threads_[i].pending_signal = signal; }

  // Lets every thread go (idempotent).
  void Detach();

 private:
  explicit PtraceAttachment(pid_t pid) : pid_(pid) {}

  pid_t pid_;
  std::vector<StoppedThread> threads_;
  bool owned_ = true;  // false: adopted, not ours to detach
};

// A one-line reason why PTRACE_SEIZE of `pid` failed with `err`: "process 42
// does not exist", "process 42 is already traced by process 7 (gdb)",
// "ptrace of process 42 refused: Yama ptrace_scope is 1 and this process lacks
// CAP_SYS_PTRACE ...", "... a seccomp filter forbids ptrace here" and so on.
// `proc_root`: "/proc", or a fixture tree in tests.
std::string DiagnosePtraceRefusal(pid_t pid, int err, const std::string& proc_root = "/proc");

}  // namespace cppdiag::dump
