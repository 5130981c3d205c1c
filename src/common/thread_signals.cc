#include "common/thread_signals.h"

#include <pthread.h>

namespace cppdiag {

ScopedBlockAsyncSignals::ScopedBlockAsyncSignals() {
  static constexpr int kAsyncSignals[] = {
      SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2,   SIGALRM, SIGCHLD, SIGPIPE, SIGWINCH,
      SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG,  SIGVTALRM, SIGPROF, SIGIO,   SIGPWR,  SIGXCPU};
  sigset_t block;
  sigemptyset(&block);
  for (int sig : kAsyncSignals) sigaddset(&block, sig);
  pthread_sigmask(SIG_BLOCK, &block, &old_);
}

ScopedBlockAsyncSignals::~ScopedBlockAsyncSignals() {
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

}  // namespace cppdiag
