// Async-signal-safe: CrashSignalHandler and everything it calls (no
// allocation, no locks, no stdio). OnTerminate runs in normal context (it
// may demangle with malloc, and falls back when that fails).
#include "diag/dump/crash_handler.h"

#include <cxxabi.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

#include "common/async_safe.h"
#include "common/raw_log.h"
#include "diag/dump/cppdiag_note.h"
#include "diag/dump/self_dump.h"

namespace cppdiag::dump {
namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
constexpr size_t kSignalCount = sizeof kSignals / sizeof kSignals[0];

std::atomic<int> g_type{-1};  // -1: the self-dump default
std::atomic<size_t> g_alt_stack_bytes{256 << 10};
std::atomic<pid_t> g_crashing_tid{0};
std::atomic<uint32_t> g_dump_done{0};  // futex word: 1 once the crash dump is over

// What each signal of kSignals did before our handler: the handler we chain
// to after the dump. Written before ours is installed, read-only after.
struct sigaction g_previous[kSignalCount];
std::atomic<bool> g_installed[kSignalCount];
// The program's own std::terminate handler, called after the dump.
std::terminate_handler g_previous_terminate = nullptr;
// The thread that raised SIGABRT from OnTerminate to dump before that handler.
std::atomic<pid_t> g_terminate_tid{0};

void AddSize(RawLine& line, uint64_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) {
    line.Udec(bytes).Add(" B");
    return;
  }
  uint64_t unit = 1024;
  int i = 0;
  while (i < 3 && bytes >= unit * 1024) {
    unit *= 1024;
    ++i;
  }
  line.Udec(bytes / unit).Add(".").Udec((bytes % unit) * 10 / unit).Add(" ").Add(kUnits[i]);
}

// Restores the default action; the signal then ends the process: a fault the
// kernel raised happens again when the handler returns, anything else (abort,
// kill) is sent again, to be delivered as the handler returns.
void ResetAndReraise(int sig, const siginfo_t* info) {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  ::sigaction(sig, &sa, nullptr);
  bool kernel_fault = info != nullptr && info->si_code > 0 && sig != SIGABRT;
  if (!kernel_fault) ::syscall(SYS_tgkill, CurrentPid(), CurrentTid(), sig);
}

const struct sigaction* PreviousAction(int sig) {
  for (size_t i = 0; i < kSignalCount; ++i) {
    if (kSignals[i] == sig) return &g_previous[i];
  }
  return nullptr;
}

// Hands the signal on to what was there before our handler, as the kernel
// would have: SIG_DFL ends the process by the signal; SIG_IGN ignores a
// signal that was sent (a fault cannot be ignored: the kernel forces the
// default action on it); a function is called with the signature, mask
// and SA_RESETHAND it was installed with, and when it returns, so do we (a
// fault it mended is retried).
void ChainToPrevious(int sig, siginfo_t* info, void* context) {
  const struct sigaction* prev = PreviousAction(sig);
  bool kernel_fault = info != nullptr && info->si_code > 0 && sig != SIGABRT;
  bool plain = prev == nullptr || !(prev->sa_flags & SA_SIGINFO);
  if (prev == nullptr || (plain && prev->sa_handler == SIG_DFL) ||
      (plain && prev->sa_handler == SIG_IGN && kernel_fault)) {
    ResetAndReraise(sig, info);
    return;
  }
  if (plain && prev->sa_handler == SIG_IGN) return;
  if (prev->sa_flags & SA_RESETHAND) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t mask = prev->sa_mask, saved;
  if (!(prev->sa_flags & SA_NODEFER)) sigaddset(&mask, sig);
  ::pthread_sigmask(SIG_BLOCK, &mask, &saved);
  if (plain) {
    prev->sa_handler(sig);
  } else {
    prev->sa_sigaction(sig, info, context);
  }
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
}

void DumpForCrash(int sig, siginfo_t* info, void* context) {
  int t = g_type.load();
  DumpType type = t < 0 ? SelfDumpDefaultType() : static_cast<DumpType>(t);
  SelfDumpRequest req;
  req.type = type;
  req.reason = "crash";
  req.siginfo = info;
  req.ucontext = static_cast<const ucontext_t*>(context);
  req.wait_if_busy = true;  // an on-demand dump in progress: ours comes next
  char path[PATH_MAX];
  if (int err = ExpandSelfDumpName(req.reason, path, sizeof path)) {
    RawLine()
        .Add("cppdiag: no dump written: cannot name it: ")
        .Add(ErrnoName(err))
        .WriteTo(STDERR_FILENO);
    return;
  }
  req.path = path;
  RawLine()
      .Add("cppdiag: writing ")
      .Add(DumpTypeName(type))
      .Add(" dump to ")
      .Add(path)
      .Add(" (reason: crash, signal ")
      .Add("SIG")
      .Add(SignalAbbrev(sig))
      .Add(")")
      .WriteTo(STDERR_FILENO);
  SelfDumpResult res;
  int err = WriteSelfDump(req, &res);
  RawLine line;
  if (err == 0) {
    line.Add("cppdiag: dump complete: ").Add(res.path).Add(" (");
    AddSize(line, res.size_bytes);
    line.Add(")");
    if (res.threads_not_captured > 0) {
      line.Add(", ").Udec(res.threads_not_captured).Add(" thread(s) not stopped");
    }
  } else {
    line.Add("cppdiag: no dump written: ")
        .Add(res.failed_call)
        .Add(" ")
        .Add(res.path)
        .Add(": ")
        .Add(ErrnoName(err));
  }
  line.WriteTo(STDERR_FILENO);
}

void CrashSignalHandler(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  pid_t me = CurrentTid();
  pid_t first = 0;
  if (!g_crashing_tid.compare_exchange_strong(first, me)) {
    if (first == me && g_dump_done.load(std::memory_order_acquire) == 0) {
      // A fault in the dump itself: handing it on would only repeat it.
      RawLine()
          .Add("cppdiag: ")
          .Add("SIG")
          .Add(SignalAbbrev(sig))
          .Add(" while writing the crash dump; giving up")
          .WriteTo(STDERR_FILENO);
      ResetAndReraise(sig, info);
      errno = saved_errno;
      return;
    }
    // The one dump of this process is being written (another thread crashed
    // first) or is over: wait for it, then the signal goes on as if we were
    // not there.
    while (g_dump_done.load(std::memory_order_acquire) == 0) {
      FutexWait(&g_dump_done, 0);
    }
    ChainToPrevious(sig, info, context);
    errno = saved_errno;
    return;
  }
  if (SelfDumpPrepared()) {
    DumpForCrash(sig, info, context);
  } else {
    RawLine().Add("cppdiag: no dump written: self-dump not prepared").WriteTo(STDERR_FILENO);
  }
  g_dump_done.store(1, std::memory_order_release);
  FutexWake(&g_dump_done, INT_MAX);
  // OnTerminate raised it to dump first: it calls the program's terminate
  // handler next, then aborts (and that SIGABRT is handed on).
  if (sig != SIGABRT || g_terminate_tid.load() != me) ChainToPrevious(sig, info, context);
  errno = saved_errno;
}

[[noreturn]] void OnTerminate() {
  RawLine line;
  line.Add("cppdiag: terminate called");
  if (std::type_info* t = abi::__cxa_current_exception_type()) {
    int status = -1;
    char* name = abi::__cxa_demangle(t->name(), nullptr, nullptr, &status);
    line.Add(" after throwing an instance of '").Add(status == 0 && name ? name : t->name());
    line.Add("'");
    std::free(name);
    try {
      throw;
    } catch (const std::exception& e) {
      line.Add(": what(): ").Add(e.what());
    } catch (...) {  // not a std::exception: the type says it all
    }
  } else {
    line.Add(" without an active exception");
  }
  line.WriteTo(STDERR_FILENO);
  // The program's own terminate handler runs after the dump: SIGABRT, raised
  // here, dumps and returns. The C++ runtime's default would only log again.
  std::terminate_handler previous = g_previous_terminate;
  if (previous != nullptr && previous != &__gnu_cxx::__verbose_terminate_handler &&
      previous != &OnTerminate) {
    g_terminate_tid.store(CurrentTid());
    ::syscall(SYS_tgkill, CurrentPid(), CurrentTid(), SIGABRT);
    g_terminate_tid.store(0);
    previous();
  }
  std::abort();  // -> SIGABRT -> the crash handler dumps, or hands it on after the dump
}

}  // namespace

Status InstallAltStackForCurrentThread(size_t bytes) {
  if (bytes == 0) bytes = g_alt_stack_bytes.load();
  bytes = (std::max<size_t>(bytes, MINSIGSTKSZ) + 4095) & ~size_t{4095};
  stack_t old{};
  if (::sigaltstack(nullptr, &old) != 0) return Error::FromErrno("sigaltstack", "query");
  if (!(old.ss_flags & SS_DISABLE) && old.ss_size >= bytes) return OkStatus();
  // A guard page below, and populated so a crash at the memory limit does not
  // fault on its own stack.
  size_t guard = 4096;
  void* p = ::mmap(nullptr, bytes + guard, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) return Error::FromErrno("mmap", "alternate signal stack");
  (void)::mprotect(p, guard, PROT_NONE);  // without it, no guard page: the stack still works
  stack_t ss{};
  ss.ss_sp = static_cast<char*>(p) + guard;
  ss.ss_size = bytes;
  if (::sigaltstack(&ss, nullptr) != 0) {
    Error e = Error::FromErrno("sigaltstack", "install");
    ::munmap(p, bytes + guard);
    return e;
  }
  return OkStatus();
}

Status InstallCrashHandler(const CrashHandlerOptions& options) {
  if (!SelfDumpPrepared()) return Error(EINVAL, "", "InstallCrashHandler needs PrepareSelfDump");
  g_type.store(options.type ? static_cast<int>(*options.type) : -1);
  g_alt_stack_bytes.store(options.alt_stack_bytes);
  CPPDIAG_RETURN_IF_ERROR(InstallAltStackForCurrentThread(options.alt_stack_bytes));
  for (size_t i = 0; i < kSignalCount; ++i) {
    // Once per signal: a later call only updates the options, and leaves a
    // handler installed after ours in place (it may chain to ours).
    if (g_installed[i].load()) continue;
    int sig = kSignals[i];
    // The previous action is saved before ours can run.
    if (::sigaction(sig, nullptr, &g_previous[i]) != 0) {
      return Error::FromErrno("sigaction", std::string("SIG") + SignalAbbrev(sig));
    }
    struct sigaction sa {};
    sa.sa_sigaction = &CrashSignalHandler;
    // SA_NODEFER: a fault inside the handler comes back to it (and is
    // reported) instead of killing the process silently.
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(sig, &sa, nullptr) != 0) {
      return Error::FromErrno("sigaction", std::string("SIG") + SignalAbbrev(sig));
    }
    g_installed[i].store(true);
  }
  if (options.handle_terminate && std::get_terminate() != &OnTerminate) {
    g_previous_terminate = std::set_terminate(&OnTerminate);
  }
  return OkStatus();
}

}  // namespace cppdiag::dump
