#include "common/thread_signals.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <thread>

namespace cppdiag {
namespace {

bool Blocked(int sig) {
  sigset_t now;
  pthread_sigmask(SIG_SETMASK, nullptr, &now);
  return sigismember(&now, sig) == 1;
}

TEST(ScopedBlockAsyncSignals, ThreadsCreatedInsideNeverTakeSigterm) {
  ASSERT_FALSE(Blocked(SIGTERM));
  bool term = false, segv = true, rt = true;
  {
    ScopedBlockAsyncSignals block;
    std::thread([&] {
      term = Blocked(SIGTERM);
      segv = Blocked(SIGSEGV);
      rt = Blocked(SIGRTMAX - 3);
    }).join();
  }
  EXPECT_TRUE(term);
  EXPECT_FALSE(segv) << "fault signals stay deliverable";
  EXPECT_FALSE(rt) << "real-time signals (thread capture) stay deliverable";
  EXPECT_FALSE(Blocked(SIGTERM)) << "the creating thread's mask is restored";
}

}  // namespace
}  // namespace cppdiag
