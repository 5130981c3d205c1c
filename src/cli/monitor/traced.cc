#include "cli/monitor/traced.h"

#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "common/io.h"
#include "common/proc.h"

namespace cppdiag::cli::monitor {
namespace {

constexpr auto kStopTimeout = std::chrono::seconds(5);

bool IsJobControlStop(int sig) {
  return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

// SIGKILL pending for thread `tid` (what zap_other_threads leaves on every
// other thread of a process that is dying as a group), or the thread gone.
bool KilledOrGone(pid_t pid, pid_t tid) {
  auto text =
      ReadFileToString("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
  if (!text) return true;
  size_t state = text->find("\nState:\t");
  if (state != std::string::npos && state + 8 < text->size() &&
      ((*text)[state + 8] == 'Z' || (*text)[state + 8] == 'X'))
    return true;  // a zombie (the leader waits there for the other threads)
  size_t at = text->find("\nSigPnd:");
  if (at == std::string::npos) return true;
  uint64_t pending = std::strtoull(text->c_str() + at + 8, nullptr, 16);
  return (pending >> (SIGKILL - 1)) & 1;
}

}  // namespace

std::string SignalName(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

Result<int> ParseSignal(const std::string& name) {
  std::string s = name;
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    long n = std::strtol(s.c_str(), nullptr, 10);
    if (n > 0 && n < NSIG) return static_cast<int>(n);
  }
  std::transform(s.begin(), s.end(), s.begin(),
                 [](char c) { return c >= 'a' && c <= 'z' ? c - 32 : c; });
  if (s.rfind("SIG", 0) == 0) s = s.substr(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    if (abbrev != nullptr && s == abbrev) {
      if (sig == SIGKILL || sig == SIGSTOP)
        return Error(EINVAL, "", "--signal " + name + ": it cannot be intercepted");
      return sig;
    }
  }
  return Error(EINVAL, "", "--signal: unknown signal '" + name + "'");
}

long TracedTarget::options() const {
  return PTRACE_O_TRACECLONE | (trace_exit_ ? PTRACE_O_TRACEEXIT : 0);
}

Result<std::unique_ptr<TracedTarget>> TracedTarget::Seize(pid_t pid, std::set<int> signals,
                                                          bool trace_exit) {
  std::unique_ptr<TracedTarget> t(new TracedTarget(pid, std::move(signals), trace_exit));
  // Listed until a listing brings no new thread; one started meanwhile by a
  // seized thread is followed by TRACECLONE anyway.
  std::set<pid_t> seen;
  for (bool added = true; added;) {
    added = false;
    auto tids = ListThreads(pid);
    if (!tids || tids->empty()) break;
    for (pid_t tid : *tids) {
      if (!seen.insert(tid).second) continue;
      if (::ptrace(PTRACE_SEIZE, tid, nullptr, t->options()) != 0) {
        int err = errno;
        if (err == ESRCH) continue;
        if (t->threads_.empty()) return Error(err, "", dump::DiagnosePtraceRefusal(pid, err));
        return Error(err, "ptrace(PTRACE_SEIZE)", "thread " + std::to_string(tid));
      }
      t->threads_.push_back({tid});
      added = true;
    }
  }
  if (t->threads_.empty()) return Error(ESRCH, "", dump::DiagnosePtraceRefusal(pid, ESRCH));
  return t;
}

TracedTarget::~TracedTarget() { Detach(); }

TracedTarget::Thread* TracedTarget::Find(pid_t tid) {
  for (Thread& t : threads_)
    if (t.tid == tid) return &t;
  return nullptr;
}

bool TracedTarget::ProcessIsDying(pid_t tid, unsigned long exit_msg) const {
  if (exit_msg != 0) return true;  // killed by a signal, or a non-zero exit code
  // Otherwise a lone thread's exit, unless every other thread is dying too.
  return std::ranges::all_of(
      threads_, [&](const Thread& t) { return t.tid == tid || KilledOrGone(pid_, t.tid); });
}

std::optional<TracedEvent> TracedTarget::Handle(pid_t tid, int status) {
  Thread* t = Find(tid);
  if (t == nullptr) return std::nullopt;
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    threads_.erase(threads_.begin() + (t - threads_.data()));
    return std::nullopt;
  }
  if (!WIFSTOPPED(status)) return std::nullopt;
  const int sig = WSTOPSIG(status);
  const int event = status >> 16;
  t->stopped = true;
  if (event == PTRACE_EVENT_CLONE) {
    unsigned long child = 0;
    if (::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &child) == 0 && child != 0 &&
        Find(static_cast<pid_t>(child)) == nullptr) {
      threads_.push_back({static_cast<pid_t>(child)});  // its first stop comes to us
      t = Find(tid);
    }
  } else if (event == PTRACE_EVENT_EXIT) {
    unsigned long msg = 0;
    (void)::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &msg);
    if (trace_exit_ && ProcessIsDying(tid, msg)) {
      int st = static_cast<int>(msg);
      TracedEvent e{.kind = TracedEvent::Kind::kExit, .tid = tid, .exit_status = st};
      e.value = WIFSIGNALED(st) ? "signal " + SignalName(WTERMSIG(st))
                                : "status " + std::to_string(WEXITSTATUS(st));
      return e;
    }
  } else if (event == PTRACE_EVENT_STOP) {
    if (IsJobControlStop(sig)) {
      // A group-stop: the thread stays stopped, and we still hear of SIGCONT.
      t->stopped = false;
      (void)::ptrace(PTRACE_LISTEN, tid, nullptr, nullptr);
      return std::nullopt;
    }
  } else if (event == 0) {
    if (signals_.count(sig) != 0) {
      return TracedEvent{
          .kind = TracedEvent::Kind::kSignal, .tid = tid, .signal = sig, .value = SignalName(sig)};
    }
    t->resume_signal = sig;  // not ours to keep: passed on untouched
  }
  int resume = t->resume_signal;
  t->resume_signal = 0;
  t->stopped = false;
  (void)::ptrace(PTRACE_CONT, tid, nullptr, resume);  // fails only once it is gone
  return std::nullopt;
}

std::optional<TracedEvent> TracedTarget::Poll() {
  for (size_t i = 0; i < threads_.size(); ++i) {
    pid_t tid = threads_[i].tid;
    int status = 0;
    pid_t r = HANDLE_EINTR(::waitpid(tid, &status, __WALL | WNOHANG));
    if (r < 0) {  // ECHILD: gone, and reaped
      threads_.erase(threads_.begin() + static_cast<long>(i));
      --i;
      continue;
    }
    if (r != tid) continue;
    if (auto e = Handle(tid, status)) return e;
    i = static_cast<size_t>(-1);  // the list may have changed: from the start again
  }
  return std::nullopt;
}

std::vector<dump::StoppedThread> TracedTarget::StopOthers(const TracedEvent& e) {
  for (Thread& t : threads_) {
    if (t.tid == e.tid || t.stopped) continue;
    if (::ptrace(PTRACE_INTERRUPT, t.tid, nullptr, nullptr) != 0) continue;
  }
  // Each interrupted thread reports a stop (or its exit); a signal-delivery
  // stop that comes first keeps its signal for the resume.
  const auto deadline = std::chrono::steady_clock::now() + kStopTimeout;
  for (size_t i = 0; i < threads_.size(); ++i) {
    Thread& t = threads_[i];
    if (t.stopped || t.tid == e.tid) continue;
    int status = 0;
    pid_t r = 0;
    for (int attempt = 0; std::chrono::steady_clock::now() < deadline; ++attempt) {
      r = HANDLE_EINTR(::waitpid(t.tid, &status, __WALL | WNOHANG));
      if (r != 0) break;
      if (KilledOrGone(pid_, t.tid)) break;  // dying with the process: never stops
      timespec nap{0, std::min(attempt, 100) * 10'000L};
      ::nanosleep(&nap, nullptr);
    }
    if (r < 0 || (r == t.tid && (WIFEXITED(status) || WIFSIGNALED(status)))) {
      threads_.erase(threads_.begin() + static_cast<long>(i));
      --i;
      continue;
    }
    if (r != t.tid || !WIFSTOPPED(status)) continue;
    t.stopped = true;
    const int event = status >> 16;
    if (event == 0) t.resume_signal = WSTOPSIG(status);
    if (event == PTRACE_EVENT_STOP && IsJobControlStop(WSTOPSIG(status))) t.group_stop = true;
    if (event == PTRACE_EVENT_CLONE) {
      unsigned long child = 0;
      if (::ptrace(PTRACE_GETEVENTMSG, t.tid, nullptr, &child) == 0 && child != 0 &&
          Find(static_cast<pid_t>(child)) == nullptr) {
        threads_.push_back({static_cast<pid_t>(child)});  // waited for in its turn
      }
    }
  }
  std::vector<dump::StoppedThread> out;
  for (const Thread& t : threads_) {
    if (!t.stopped && t.tid != e.tid) continue;
    out.push_back({t.tid, t.tid == e.tid ? e.signal : t.resume_signal, t.group_stop});
  }
  return out;
}

void TracedTarget::Resume(const TracedEvent& e) {
  for (Thread& t : threads_) {
    if (!t.stopped && t.tid != e.tid) continue;
    int sig = t.tid == e.tid ? e.signal : t.resume_signal;
    if (t.group_stop) {
      (void)::ptrace(PTRACE_LISTEN, t.tid, nullptr, nullptr);
    } else {
      (void)::ptrace(PTRACE_CONT, t.tid, nullptr, sig);  // fails only once it is gone
    }
    t.stopped = false;
    t.resume_signal = 0;
    t.group_stop = false;
  }
}

void TracedTarget::Detach() {
  for (Thread& t : threads_) {
    if (!t.stopped) {
      // Only a stopped tracee can be detached.
      if (::ptrace(PTRACE_INTERRUPT, t.tid, nullptr, nullptr) != 0) continue;
      // Never a blocking wait: a dying thread (or a zombie leader) never stops.
      int status = 0;
      pid_t r = 0;
      const auto deadline = std::chrono::steady_clock::now() + kStopTimeout;
      for (int attempt = 0; r == 0 && std::chrono::steady_clock::now() < deadline; ++attempt) {
        r = HANDLE_EINTR(::waitpid(t.tid, &status, __WALL | WNOHANG));
        if (r == 0 && KilledOrGone(pid_, t.tid)) break;
        if (r == 0) {
          timespec nap{0, std::min(attempt, 100) * 10'000L};
          ::nanosleep(&nap, nullptr);
        }
      }
      if (r != t.tid || !WIFSTOPPED(status)) continue;
      if ((status >> 16) == 0) t.resume_signal = WSTOPSIG(status);
    }
    (void)::ptrace(PTRACE_DETACH, t.tid, nullptr, t.resume_signal);
  }
  threads_.clear();
}

}  // namespace cppdiag::cli::monitor
