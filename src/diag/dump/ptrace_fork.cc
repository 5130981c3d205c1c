#include "diag/dump/ptrace_fork.h"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/io.h"
#include "common/proc.h"
#include "diag/dump/ptrace_attach.h"

namespace cppdiag::dump {
namespace {

// The kernel's restart codes (include/linux/errno.h; not in the uapi).
constexpr long kERestartSys = 512, kERestartNoIntr = 513, kERestartNoHand = 514,
               kERestartRestartBlock = 516;

Error PtraceError(const char* what, pid_t tid) {
  return Error::FromErrno(std::string("ptrace(") + what + ")", "thread " + std::to_string(tid));
}

// What the kernel would have done on the way back to user space with no
// handler to run: restart the interrupted syscall.
user_regs_struct WithRestart(user_regs_struct r) {
  auto ax = static_cast<long>(r.rax);
  if (static_cast<long>(r.orig_rax) < 0) return r;
  if (ax == -kERestartSys || ax == -kERestartNoIntr || ax == -kERestartNoHand) {
    r.rax = r.orig_rax;
    r.rip -= 2;
  } else if (ax == -kERestartRestartBlock) {
    r.rax = SYS_restart_syscall;
    r.rip -= 2;
  }
  return r;
}

enum class Stop { kSyscall, kClone, kSignal, kOther, kGone };

Stop WaitStop(pid_t tid, int* sig) {
  int status = 0;
  if (HANDLE_EINTR(::waitpid(tid, &status, __WALL)) != tid) return Stop::kGone;
  if (!WIFSTOPPED(status)) return Stop::kGone;
  *sig = WSTOPSIG(status);
  int event = status >> 16;
  if (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_FORK) return Stop::kClone;
  if (*sig == (SIGTRAP | 0x80)) return Stop::kSyscall;
  if (event == 0) return Stop::kSignal;
  return Stop::kOther;
}

bool Contains(const std::string& hay, const char* needle) {
  return hay.find(needle) != std::string::npos;
}

}  // namespace

Result<uint64_t> FindSyscallInstruction(pid_t pid) {
  CPPDIAG_ASSIGN_OR_RETURN(auto maps, ReadMaps(pid));
  // Best first: the vdso, then libc, then any executable file.
  for (int pass = 0; pass < 3; ++pass) {
    for (const MemoryMapping& m : maps) {
      if (!m.exec || !m.read) continue;
      bool wanted = pass == 0   ? m.path == "[vdso]"
                    : pass == 1 ? Contains(m.path, "/libc.so") || Contains(m.path, "/libc-")
                                : !m.path.empty() && m.path[0] == '/';
      if (!wanted) continue;
      std::vector<uint8_t> text(std::min<uint64_t>(m.size(), 4 << 20));
      iovec local{text.data(), text.size()}, remote{reinterpret_cast<void*>(m.start), text.size()};
      ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
      for (ssize_t i = 0; i + 1 < n; ++i) {
        if (text[i] == 0x0f && text[i + 1] == 0x05) return m.start + static_cast<uint64_t>(i);
      }
    }
  }
  return Error(ENOENT, "", "no syscall instruction found in process " + std::to_string(pid));
}

Result<long> InjectSyscall(pid_t tid, uint64_t syscall_at, long nr,
                           const std::array<uint64_t, 6>& args, pid_t* child, int* signal) {
  *signal = 0;
  if (child != nullptr) *child = 0;
  user_regs_struct saved{};
  if (::ptrace(PTRACE_GETREGS, tid, nullptr, &saved) != 0) return PtraceError("GETREGS", tid);
  long options = PTRACE_O_TRACESYSGOOD | (child != nullptr ? PTRACE_O_TRACECLONE : 0);
  if (::ptrace(PTRACE_SETOPTIONS, tid, nullptr, options) != 0) {
    return PtraceError("SETOPTIONS", tid);
  }
  user_regs_struct r = saved;
  r.rip = syscall_at;
  r.rax = static_cast<uint64_t>(nr);
  r.orig_rax = static_cast<uint64_t>(-1);
  r.rdi = args[0];
  r.rsi = args[1];
  r.rdx = args[2];
  r.r10 = args[3];
  r.r8 = args[4];
  r.r9 = args[5];
  // Whatever happens next, the thread gets its registers and options back.
  auto restore = [&](const user_regs_struct& regs) {
    ::ptrace(PTRACE_SETREGS, tid, nullptr, &regs);
    ::ptrace(PTRACE_SETOPTIONS, tid, nullptr, 0);
  };
  if (::ptrace(PTRACE_SETREGS, tid, nullptr, &r) != 0) {
    Error e = PtraceError("SETREGS", tid);
    restore(saved);
    return e;
  }
  int sig = 0;
  if (::ptrace(PTRACE_SYSCALL, tid, nullptr, 0) != 0) {
    Error e = PtraceError("SYSCALL", tid);
    restore(saved);
    return e;
  }
  Stop stop = WaitStop(tid, &sig);
  if (stop == Stop::kSignal) {
    // A signal came first: the thread is in its signal-delivery-stop, still
    // before our syscall. Back as it was; the signal goes with the detach.
    restore(saved);
    *signal = sig;
    return Error(EINTR, "", "a signal arrived at thread " + std::to_string(tid));
  }
  if (stop != Stop::kSyscall) {
    if (stop != Stop::kGone) restore(saved);
    return Error(ESRCH, "", "thread " + std::to_string(tid) + " did not reach the syscall");
  }
  // Entry stop; on to the exit stop (a clone reports its child on the way).
  for (;;) {
    if (::ptrace(PTRACE_SYSCALL, tid, nullptr, 0) != 0) return PtraceError("SYSCALL", tid);
    stop = WaitStop(tid, &sig);
    if (stop == Stop::kClone && child != nullptr) {
      unsigned long msg = 0;
      if (::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &msg) == 0) *child = static_cast<pid_t>(msg);
      continue;
    }
    if (stop == Stop::kSyscall) break;
    if (stop == Stop::kGone) return Error(ESRCH, "", "thread " + std::to_string(tid) + " died");
  }
  user_regs_struct after{};
  if (::ptrace(PTRACE_GETREGS, tid, nullptr, &after) != 0) {
    Error e = PtraceError("GETREGS", tid);
    restore(WithRestart(saved));
    return e;
  }
  restore(WithRestart(saved));
  return static_cast<long>(after.rax);
}

Result<pid_t> InjectFork(pid_t tid, uint64_t syscall_at, int* signal) {
  pid_t child = 0;
  CPPDIAG_ASSIGN_OR_RETURN(
      long rc, InjectSyscall(tid, syscall_at, SYS_clone, {0, 0, 0, 0, 0, 0}, &child, signal));
  if (rc < 0) {
    return Error(static_cast<int>(-rc), "clone", "injected into thread " + std::to_string(tid));
  }
  if (child == 0) child = static_cast<pid_t>(rc);
  // Auto-attached: its first stop comes before it runs a single instruction.
  int sig = 0;
  Stop stop = WaitStop(child, &sig);
  if (stop == Stop::kGone) return Error(ESRCH, "", "the injected fork's child vanished");
  if (::ptrace(PTRACE_SETOPTIONS, child, nullptr, PTRACE_O_EXITKILL) != 0) {
    Error e = PtraceError("SETOPTIONS", child);
    ::kill(child, SIGKILL);
    return e;
  }
  return child;
}

Status KillInjectedChild(pid_t target, pid_t tid, pid_t child, uint64_t syscall_at) {
  ::kill(child, SIGKILL);
  int status = 0;
  HANDLE_EINTR(::waitpid(child, &status, __WALL));  // as its tracer
  // Its zombie now waits for its parent, the target: reap it there.
  CPPDIAG_ASSIGN_OR_RETURN(PtraceAttachment one, PtraceAttachment::AttachThread(target, tid));
  if (one.threads().empty() || one.threads()[0].group_stop) {
    return Error(EAGAIN, "", "the target is stopped; its child's zombie was left");
  }
  int signal = 0;
  auto rc = InjectSyscall(tid, syscall_at, SYS_wait4,
                          {static_cast<uint64_t>(child), 0, __WALL, 0, 0, 0}, nullptr, &signal);
  if (signal != 0) one.set_pending_signal(0, signal);
  if (!rc) return rc.error();
  if (*rc != child) {
    return Error(static_cast<int>(*rc < 0 ? -*rc : ECHILD), "wait4",
                 "injected to reap the dump's child " + std::to_string(child));
  }
  return {};
}

}  // namespace cppdiag::dump
