// The ptrace session of `cppdiag monitor --signal` / `--exit`: the monitor
// is the target's tracer for the whole watch.
//
// Seize() attaches every thread with PTRACE_SEIZE (no stop) and the options
// TRACECLONE (threads started later are followed) and, for --exit,
// TRACEEXIT. Poll() handles every stop that is waiting, without blocking:
// a new thread is let run, an exited one dropped, a signal not listed is
// passed on untouched, a group-stop is left in PTRACE_LISTEN (as ptrace(2)
// says for seized tracees), and it returns the first event that fires a
// dump (a listed signal's delivery stop, or the exit stop of a process
// about to die), with that thread left stopped. StopOthers() then stops the
// other threads for the dump; Resume() lets every thread go, the firing
// thread with its signal re-delivered (or on to its exit, whose status the
// kernel keeps). The destructor detaches every thread.
//
//   auto s = TracedTarget::Seize(pid, {SIGUSR1}, false);
//   while (auto e = s->Poll()) { auto threads = s->StopOthers(*e); dump; s->Resume(*e); }
//
// Not async-signal-safe; for the cppdiag tool.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "diag/dump/ptrace_attach.h"

namespace cppdiag::cli::monitor {

struct TracedEvent {
  enum class Kind { kSignal, kExit } kind = Kind::kSignal;
  pid_t tid = 0;
  int signal = 0;       // kSignal: the signal being delivered
  int exit_status = 0;  // kExit: the wait status the process will end with
  std::string value;    // "SIGUSR1", "signal SIGSEGV", "status 3"
};

class TracedTarget {
 public:
  static Result<std::unique_ptr<TracedTarget>> Seize(pid_t pid, std::set<int> signals,
                                                     bool trace_exit);
  ~TracedTarget();
  TracedTarget(const TracedTarget&) = delete;
  TracedTarget& operator=(const TracedTarget&) = delete;

  // The next event that fires a dump, if one is waiting; nullopt otherwise.
  std::optional<TracedEvent> Poll();
  // Stops every other thread; returns all the stopped threads, the firing
  // one included (what the dump adopts).
  std::vector<dump::StoppedThread> StopOthers(const TracedEvent& e);
  // Lets every stopped thread go; the firing one with its signal.
  void Resume(const TracedEvent& e);
  // Every thread has exited.
  bool gone() const { return threads_.empty(); }
  void Detach();

 private:
  struct Thread {
    pid_t tid = 0;
    bool stopped = false;  // held in a ptrace-stop by us
    int resume_signal = 0;
    bool group_stop = false;
  };
  TracedTarget(pid_t pid, std::set<int> signals, bool trace_exit)
      : pid_(pid), signals_(std::move(signals)), trace_exit_(trace_exit) {}
  // Handles one wait status of `tid`; returns a firing event, if it is one.
  std::optional<TracedEvent> Handle(pid_t tid, int status);
  bool ProcessIsDying(pid_t tid, unsigned long exit_msg) const;
  Thread* Find(pid_t tid);
  long options() const;

  pid_t pid_;
  std::set<int> signals_;
  bool trace_exit_;
  std::vector<Thread> threads_;
};

// "SIGUSR1" for 10; "signal 99" for what has no name.
std::string SignalName(int sig);
// 10 for "SIGUSR1", "USR1" or "10"; an error otherwise.
Result<int> ParseSignal(const std::string& name);

}  // namespace cppdiag::cli::monitor
