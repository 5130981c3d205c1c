// Async-signal-safe: CrashSignalHandler and everything it calls (no
// allocation, no locks, no stdio). OnTerminate runs in normal context (it
// may demangle with malloc, and falls back when that fails).
#include "diag/dump/crash_handler.h"

#include <cxxabi.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <exception>
#include <typeinfo>

#include "common/raw_log.h"
#include "diag/dump/cppdiag_note.h"
#include "diag/dump/self_dump.h"

namespace cppdiag::dump {
namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

std::atomic<int> g_type{-1};  // -1: the self-dump default
std::atomic<size_t> g_alt_stack_bytes{256 << 10};
std::atomic<pid_t> g_crashing_tid{0};
std::atomic<uint32_t> g_dump_done{0};  // futex word: 1 once the crash dump is over

pid_t Tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

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
  if (!kernel_fault) ::syscall(SYS_tgkill, ::getpid(), Tid(), sig);
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
      .Add(SignalName(sig))
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
  pid_t me = Tid();
  pid_t first = 0;
  if (!g_crashing_tid.compare_exchange_strong(first, me)) {
    if (first == me) {
      RawLine()
          .Add("cppdiag: ")
          .Add(SignalName(sig))
          .Add(" while writing the crash dump; giving up")
          .WriteTo(STDERR_FILENO);
    } else {
      // Another thread crashed first and is dumping; its signal ends the
      // process once the dump is written. Wait for that.
      while (g_dump_done.load(std::memory_order_acquire) == 0) {
        ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&g_dump_done),
                  FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, nullptr, nullptr, 0);
      }
    }
    ResetAndReraise(sig, info);
    errno = saved_errno;
    return;
  }
  if (SelfDumpPrepared()) {
    DumpForCrash(sig, info, context);
  } else {
    RawLine().Add("cppdiag: no dump written: self-dump not prepared").WriteTo(STDERR_FILENO);
  }
  g_dump_done.store(1, std::memory_order_release);
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&g_dump_done), FUTEX_WAKE | FUTEX_PRIVATE_FLAG,
            INT_MAX, nullptr, nullptr, 0);
  ResetAndReraise(sig, info);
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
  std::abort();  // -> SIGABRT -> the crash handler dumps
}

}  // namespace

const char* SignalName(int sig) {
  switch (sig) {
    case SIGSEGV:
      return "SIGSEGV";
    case SIGBUS:
      return "SIGBUS";
    case SIGILL:
      return "SIGILL";
    case SIGFPE:
      return "SIGFPE";
    case SIGABRT:
      return "SIGABRT";
    case SIGTRAP:
      return "SIGTRAP";
    case SIGKILL:
      return "SIGKILL";
    case SIGTERM:
      return "SIGTERM";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGUSR2:
      return "SIGUSR2";
    default:
      return "SIG?";
  }
}

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
  ::mprotect(p, guard, PROT_NONE);
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
  for (int sig : kSignals) {
    struct sigaction sa {};
    sa.sa_sigaction = &CrashSignalHandler;
    // SA_NODEFER: a fault inside the handler comes back to it (and is
    // reported) instead of killing the process silently.
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(sig, &sa, nullptr) != 0) {
      return Error::FromErrno("sigaction", SignalName(sig));
    }
  }
  if (options.handle_terminate) std::set_terminate(&OnTerminate);
  return OkStatus();
}

}  // namespace cppdiag::dump
