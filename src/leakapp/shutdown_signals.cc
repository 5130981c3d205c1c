#include "leakapp/shutdown_signals.h"

#include <pthread.h>
#include <signal.h>

namespace leakapp {
namespace {

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void BlockShutdownSignals() {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

ShutdownSignalWatcher::ShutdownSignalWatcher(std::function<void(int)> on_signal)
    : on_signal_(std::move(on_signal)) {
  thread_ = std::thread([this] {
    sigset_t set = ShutdownSignals();
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    if (!closing_) on_signal_(sig);
  });
}

ShutdownSignalWatcher::~ShutdownSignalWatcher() {
  closing_ = true;
  // Directed at the thread, and blocked everywhere: only its sigwait() takes it.
  // NOLINTNEXTLINE(bugprone-bad-signal-to-kill-thread): it wakes sigwait, kills nothing
  pthread_kill(thread_.native_handle(), SIGTERM);
  thread_.join();
}

}  // namespace leakapp
