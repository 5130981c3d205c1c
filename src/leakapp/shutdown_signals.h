// Clean shutdown on SIGTERM and SIGINT without async-signal-safety worries:
// the signals are blocked in every thread and one thread takes them with
// sigwait(), then runs ordinary code.
//
//   BlockShutdownSignals();             // first, before any thread starts
//   ... start threads ...
//   ShutdownSignalWatcher watcher([&](int sig) { server.Shutdown(); });
#pragma once

#include <atomic>
#include <functional>
#include <thread>

namespace leakapp {

// Blocks SIGTERM and SIGINT in the calling thread; threads it starts later
// inherit the mask. Call before any other thread exists, or one of them may
// take the signal and die by it.
void BlockShutdownSignals();

class ShutdownSignalWatcher {
 public:
  // Starts a thread that waits for SIGTERM or SIGINT and then calls
  // `on_signal(signo)`, once.
  explicit ShutdownSignalWatcher(std::function<void(int)> on_signal);
  // Joins the thread, waking it without calling `on_signal` if no signal came.
  ~ShutdownSignalWatcher();
  ShutdownSignalWatcher(const ShutdownSignalWatcher&) = delete;
  ShutdownSignalWatcher& operator=(const ShutdownSignalWatcher&) = delete;

 private:
  std::function<void(int)> on_signal_;
  std::atomic<bool> closing_{false};
  std::thread thread_;
};

}  // namespace leakapp
