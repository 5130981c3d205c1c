// Threads a library starts in someone else's process must not take the
// process's asynchronous signals (SIGTERM, SIGINT, SIGCHLD, SIGUSR1...): the
// kernel hands a process-directed signal to any thread that does not block it,
// and the application's sigwait() or handler expects it.
//
// Create library threads inside a ScopedBlockAsyncSignals: a new thread
// inherits the creating thread's mask, so it never has a window in which it
// could take one. Synchronous fault signals and real-time signals (the dump's
// thread-capture signal among them) stay deliverable.
//
//   {
//     ScopedBlockAsyncSignals block;
//     worker_ = std::thread(...);
//   }
#pragma once

#include <signal.h>

namespace cppdiag {

class ScopedBlockAsyncSignals {
 public:
  ScopedBlockAsyncSignals();
  ~ScopedBlockAsyncSignals();
  ScopedBlockAsyncSignals(const ScopedBlockAsyncSignals&) = delete;
  ScopedBlockAsyncSignals& operator=(const ScopedBlockAsyncSignals&) = delete;

 private:
  sigset_t old_;
};

}  // namespace cppdiag
