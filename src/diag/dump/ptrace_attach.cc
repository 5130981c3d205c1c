#include "diag/dump/ptrace_attach.h"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>
#include <string_view>

#include "common/io.h"
#include "common/proc.h"

namespace cppdiag::dump {
namespace {

constexpr auto kStopTimeout = std::chrono::seconds(5);
constexpr int kCapSysPtrace = 19;

enum class StopOutcome { kStopped, kExited, kTimedOut, kCancelled };

// The one-letter state of /proc/<pid>/task/<tid>/stat ('?' when unreadable).
char ThreadState(pid_t pid, pid_t tid) {
  auto text =
      ReadFileToString("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat");
  if (!text) return '?';
  size_t close = text->rfind(')');
  return close != std::string::npos && close + 2 < text->size() ? (*text)[close + 2] : '?';
}

void Nap(int attempt) {
  timespec ts{0, std::min(attempt, 100) * 10'000L};  // 10 us growing to 1 ms
  ::nanosleep(&ts, nullptr);
}

// Waits for `tid` (seized and interrupted) to report a stop or its end.
StopOutcome WaitForStop(pid_t pid, pid_t tid, const std::atomic<bool>* cancel, int* signal,
                        bool* group_stop = nullptr) {
  *signal = 0;
  auto deadline = std::chrono::steady_clock::now() + kStopTimeout;
  for (int attempt = 0;; ++attempt) {
    int status = 0;
    pid_t r = HANDLE_EINTR(::waitpid(tid, &status, __WALL | WNOHANG));
    if (r < 0) return StopOutcome::kExited;  // ECHILD: gone, and reaped
    if (r == tid) {
      if (WIFEXITED(status) || WIFSIGNALED(status)) return StopOutcome::kExited;
      if (WIFSTOPPED(status)) {
        // PTRACE_EVENT_STOP: our interrupt (SIGTRAP) or a group-stop;
        // otherwise a signal-delivery-stop, whose signal is handed back.
        if ((status >> 16) != PTRACE_EVENT_STOP) {
          *signal = WSTOPSIG(status);
        } else if (group_stop != nullptr) {
          *group_stop = WSTOPSIG(status) != SIGTRAP;
        }
        return StopOutcome::kStopped;
      }
      continue;
    }
    // A zombie (a leader that called pthread_exit) never stops.
    char state = ThreadState(pid, tid);
    if (state == 'Z' || state == 'X' || state == '?') return StopOutcome::kExited;
    if (cancel != nullptr && cancel->load()) return StopOutcome::kCancelled;
    if (std::chrono::steady_clock::now() > deadline) return StopOutcome::kTimedOut;
    Nap(attempt);
  }
}

// "Key:\tvalue" of a /proc status file, or "".
std::string StatusField(const std::string& text, std::string_view key) {
  size_t at = 0;
  while (at < text.size()) {
    size_t eol = text.find('\n', at);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + at, eol - at);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
      line.remove_prefix(key.size() + 1);
      while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
      return std::string(line);
    }
    at = eol + 1;
  }
  return "";
}

long ToLong(const std::string& s, long fallback) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  return end != s.c_str() ? v : fallback;
}

bool HasCapability(const std::string& self_status, int cap) {
  std::string eff = StatusField(self_status, "CapEff");
  if (eff.empty()) return false;
  return (std::strtoull(eff.c_str(), nullptr, 16) >> cap) & 1;
}

}  // namespace

std::string DiagnosePtraceRefusal(pid_t pid, int err, const std::string& proc_root) {
  const std::string who = "process " + std::to_string(pid);
  auto target = ReadFileToString(proc_root + "/" + std::to_string(pid) + "/status");
  if (!target || err == ESRCH) return who + " does not exist (or exited)";
  auto self = ReadFileToString(proc_root + "/self/status");
  std::string self_status = self ? *self : "";
  bool seccomp = ToLong(StatusField(self_status, "Seccomp"), 0) != 0;
  if (err == ENOSYS) {
    return "ptrace of " + who + " refused: a seccomp filter forbids ptrace in this container" +
           " (add the SYS_PTRACE capability, or a profile that allows ptrace)";
  }
  long tracer = ToLong(StatusField(*target, "TracerPid"), 0);
  if (tracer != 0) {
    auto comm = ReadFileToString(proc_root + "/" + std::to_string(tracer) + "/comm");
    std::string name = comm ? std::string(comm->substr(0, comm->find('\n'))) : "?";
    return who + " is already traced by process " + std::to_string(tracer) + " (" + name +
           "); a process has one tracer at a time";
  }
  auto yama = ReadFileToString(proc_root + "/sys/kernel/yama/ptrace_scope");
  long scope = yama ? ToLong(*yama, 0) : 0;
  bool cap = HasCapability(self_status, kCapSysPtrace);
  if (scope >= 3) {
    return "ptrace of " + who + " refused: Yama ptrace_scope is 3 (ptrace disabled on this host)";
  }
  if (!cap && scope >= 1) {
    return "ptrace of " + who + " refused: Yama ptrace_scope is " + std::to_string(scope) +
           " and cppdiag lacks CAP_SYS_PTRACE (run it as root or with the SYS_PTRACE capability)";
  }
  long target_uid = ToLong(StatusField(*target, "Uid"), -1);
  if (!cap && target_uid != static_cast<long>(::geteuid())) {
    return "ptrace of " + who + " refused: it belongs to uid " + std::to_string(target_uid) +
           " and cppdiag (uid " + std::to_string(::geteuid()) + ") lacks CAP_SYS_PTRACE";
  }
  if (seccomp && cap) {
    return "ptrace of " + who + " refused: a seccomp filter forbids ptrace in this container" +
           " (add the SYS_PTRACE capability, or a profile that allows ptrace)";
  }
  return "ptrace of " + who + " refused: " + ErrnoDescription(err) +
         (cap ? "" : " (the target may be non-dumpable; CAP_SYS_PTRACE would be needed)");
}

Result<PtraceAttachment> PtraceAttachment::Attach(pid_t pid, const std::atomic<bool>* cancel) {
  PtraceAttachment a(pid);
  std::set<pid_t> seen;
  for (int round = 0;; ++round) {
    auto tids = ListThreads(pid);
    if (!tids || tids->empty()) {
      if (a.threads_.empty()) return Error(ESRCH, "", DiagnosePtraceRefusal(pid, ESRCH));
      break;  // exited while we held some of it: their detach is all that is left
    }
    bool added = false;
    for (pid_t tid : *tids) {
      if (!seen.insert(tid).second) continue;
      if (::ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
        int err = errno;
        if (err == ESRCH) continue;  // exited since the listing
        // The kernel refuses a thread that has begun to exit (its exit state
        // is set) with EPERM, not ESRCH: once we hold another thread of the
        // process, permission is not the question.
        if (err == EPERM && !a.threads_.empty()) {
          char state = ThreadState(pid, tid);
          if (state == 'Z' || state == 'X' || state == '?') continue;
        }
        if (a.threads_.empty()) return Error(err, "", DiagnosePtraceRefusal(pid, err));
        return Error(err, "ptrace(PTRACE_SEIZE)", "thread " + std::to_string(tid));
      }
      added = true;
      a.threads_.push_back({tid, 0});  // held from now on: the destructor lets it go
      int signal = 0;
      bool group_stop = false;
      StopOutcome outcome = ::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) == 0
                                ? WaitForStop(pid, tid, cancel, &signal, &group_stop)
                                : StopOutcome::kExited;
      switch (outcome) {
        case StopOutcome::kStopped:
          a.threads_.back().pending_signal = signal;
          a.threads_.back().group_stop = group_stop;
          break;
        case StopOutcome::kExited:
          a.threads_.pop_back();
          break;
        case StopOutcome::kCancelled:
          return Error(ECANCELED, "",
                       "interrupted while attaching to process " + std::to_string(pid));
        case StopOutcome::kTimedOut:
          return Error(ETIMEDOUT, "",
                       "thread " + std::to_string(tid) + " of process " + std::to_string(pid) +
                           " did not stop within 5 s");
      }
    }
    if (!added) break;
    if (round > 10000) {
      return Error(EAGAIN, "",
                   "process " + std::to_string(pid) + " starts threads faster than " +
                       "they can be stopped");
    }
  }
  if (a.threads_.empty()) return Error(ESRCH, "", "process " + std::to_string(pid) + " exited");
  // The leader first (the core's first thread is the one gdb selects).
  std::stable_partition(a.threads_.begin(), a.threads_.end(),
                        [pid](const StoppedThread& t) { return t.tid == pid; });
  return a;
}

Result<PtraceAttachment> PtraceAttachment::AttachThread(pid_t pid, pid_t tid) {
  PtraceAttachment a(pid);
  if (::ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
    return Error::FromErrno("ptrace(PTRACE_SEIZE)", "thread " + std::to_string(tid));
  }
  a.threads_.push_back({tid, 0});
  int signal = 0;
  bool group_stop = false;
  if (::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0 ||
      WaitForStop(pid, tid, nullptr, &signal, &group_stop) != StopOutcome::kStopped) {
    a.threads_.clear();
    return Error(ESRCH, "", "thread " + std::to_string(tid) + " did not stop");
  }
  a.threads_.back().pending_signal = signal;
  a.threads_.back().group_stop = group_stop;
  return a;
}

PtraceAttachment PtraceAttachment::Adopt(pid_t pid, std::vector<StoppedThread> threads) {
  PtraceAttachment a(pid);
  a.threads_ = std::move(threads);
  a.owned_ = false;
  std::stable_partition(a.threads_.begin(), a.threads_.end(),
                        [pid](const StoppedThread& t) { return t.tid == pid; });
  return a;
}

PtraceAttachment::PtraceAttachment(PtraceAttachment&& other) noexcept
    : pid_(other.pid_), threads_(std::move(other.threads_)), owned_(other.owned_) {
  other.threads_.clear();
}

void PtraceAttachment::Detach() {
  if (!owned_) {  // adopted: the session that holds them lets them go
    threads_.clear();
    return;
  }
  for (const StoppedThread& t : threads_) {
    // Only a stopped tracee can be detached; one that was resumed (an
    // injection's single step) is stopped again first.
    if (::ptrace(PTRACE_DETACH, t.tid, nullptr, t.pending_signal) == 0 || errno != ESRCH) continue;
    if (::ptrace(PTRACE_INTERRUPT, t.tid, nullptr, nullptr) != 0) continue;  // gone
    int signal = 0;
    if (WaitForStop(pid_, t.tid, nullptr, &signal) == StopOutcome::kStopped) {
      // Fails only for a thread that has gone meanwhile.
      (void)::ptrace(PTRACE_DETACH, t.tid, nullptr, signal != 0 ? signal : t.pending_signal);
    }
  }
  threads_.clear();
}

}  // namespace cppdiag::dump
