#include "diag/dump/crash_handler.h"

#include "common/raw_log.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "diag/dump/self_dump.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"

namespace cppdiag::dump {
namespace {

using ::cppdiag::testing::IsOk;

using ::cppdiag::testing::ScopedTempDir;

namespace fs = std::filesystem;

class CrashHandlerDeathTest : public ::testing::Test {
 protected:
  // Runs in the death test's child.
  void Arm() {
    SelfDumpConfig c;
    c.default_type = DumpType::kMini;
    c.name_template = dir_ + "/core.%r";
    if (!PrepareSelfDump(c).ok() || !InstallCrashHandler().ok()) _exit(99);
  }
  bool Dumped() const { return fs::exists(dir_ + "/core.crash"); }
  ScopedTempDir tmp_{"cppdiag-crash"};
  std::string dir_ = tmp_.path();
};

volatile uintptr_t g_bad = 8;
volatile bool g_forever = true;

int Recurse(int depth) {
  volatile char pad[1024];
  pad[0] = static_cast<char>(depth);
  if (!g_forever) return pad[0];
  return Recurse(depth + 1) + pad[0];
}

TEST_F(CrashHandlerDeathTest, SegfaultIsDumpedThenReraised) {
  EXPECT_EXIT(
      {
        Arm();
        *reinterpret_cast<volatile int*>(g_bad) = 1;
      },
      ::testing::KilledBySignal(SIGSEGV),
      "cppdiag: writing mini dump to .*core.crash \\(reason: crash, signal SIGSEGV\\)\n"
      "cppdiag: dump complete: .*core.crash \\([0-9.]+ [KM]iB\\)");
  EXPECT_TRUE(Dumped());
}

TEST_F(CrashHandlerDeathTest, AbortIsDumpedThenReraised) {
  EXPECT_EXIT(
      {
        Arm();
        std::abort();
      },
      ::testing::KilledBySignal(SIGABRT), "signal SIGABRT\\)\ncppdiag: dump complete");
  EXPECT_TRUE(Dumped());
}

TEST_F(CrashHandlerDeathTest, KillWithACrashSignalIsDumpedToo) {
  EXPECT_EXIT(
      {
        Arm();
        ::kill(::getpid(), SIGBUS);  // not a fault: returning would not re-raise it
        for (;;) ::pause();
      },
      ::testing::KilledBySignal(SIGBUS), "signal SIGBUS\\)\ncppdiag: dump complete");
  EXPECT_TRUE(Dumped());
}

TEST_F(CrashHandlerDeathTest, UncaughtExceptionIsLoggedAndDumped) {
  EXPECT_EXIT(
      {
        Arm();
        // From a thread: gtest would catch it on the test's own thread.
        std::thread([] { throw std::runtime_error("boom"); }).join();
      },
      ::testing::KilledBySignal(SIGABRT),
      "cppdiag: terminate called after throwing an instance of 'std::runtime_error': what\\(\\): "
      "boom\n.*writing mini dump");
  EXPECT_TRUE(Dumped());
}

TEST_F(CrashHandlerDeathTest, StackOverflowOnTheMainThreadIsDumpedFromTheAltStack) {
  EXPECT_EXIT(
      {
        Arm();
        Recurse(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "dump complete");
  EXPECT_TRUE(Dumped());
}

TEST_F(CrashHandlerDeathTest, AFailedDumpSaysWhyAndTheSignalStillKills) {
  EXPECT_EXIT(
      {
        SelfDumpConfig c;
        c.name_template = "/nonexistent-dir/core.%p";
        if (!PrepareSelfDump(c).ok() || !InstallCrashHandler().ok()) _exit(99);
        *reinterpret_cast<volatile int*>(g_bad) = 1;
      },
      ::testing::KilledBySignal(SIGSEGV),
      "cppdiag: no dump written: open /nonexistent-dir/core.[0-9]+: ENOENT");
}

// --- handlers the program installed before ours ---

void Say(const char* text) { (void)!::write(STDERR_FILENO, text, std::strlen(text)); }

// SA_SIGINFO: gets the fault's siginfo, runs with its own sa_mask blocked.
void PreviousSiginfoHandler(int sig, siginfo_t* info, void* context) {
  sigset_t now;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &now);
  bool args_ok = sig == SIGSEGV && info != nullptr && info->si_signo == SIGSEGV &&
                 reinterpret_cast<uintptr_t>(info->si_addr) == g_bad && context != nullptr;
  Say(args_ok ? "previous handler: siginfo ok" : "previous handler: bad arguments");
  Say(sigismember(&now, SIGUSR1) ? ", its mask\n" : ", not its mask\n");
  ::_exit(42);
}

void PreviousPlainHandler(int sig) {
  Say(sig == SIGABRT ? "previous plain handler: SIGABRT\n" : "previous plain handler: ?\n");
  ::_exit(43);
}

void Install(int sig, void (*siginfo_handler)(int, siginfo_t*, void*), void (*plain)(int),
             int mask_signal = 0) {
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  if (mask_signal != 0) sigaddset(&sa.sa_mask, mask_signal);
  if (siginfo_handler != nullptr) {
    sa.sa_sigaction = siginfo_handler;
    sa.sa_flags = SA_SIGINFO;
  } else {
    sa.sa_handler = plain;
  }
  if (::sigaction(sig, &sa, nullptr) != 0) _exit(98);
}

TEST_F(CrashHandlerDeathTest, APreviousSiginfoHandlerRunsAfterTheDump) {
  EXPECT_EXIT(
      {
        Install(SIGSEGV, &PreviousSiginfoHandler, nullptr, SIGUSR1);
        Arm();
        *reinterpret_cast<volatile int*>(g_bad) = 1;
      },
      ::testing::ExitedWithCode(42),
      "cppdiag: dump complete: .*core.crash .*\nprevious handler: siginfo ok, its mask\n");
  EXPECT_TRUE(Dumped());
}

TEST_F(CrashHandlerDeathTest, APreviousPlainHandlerRunsAfterTheDump) {
  EXPECT_EXIT(
      {
        Install(SIGABRT, nullptr, &PreviousPlainHandler);
        Arm();
        std::abort();
      },
      ::testing::ExitedWithCode(43), "dump complete.*\nprevious plain handler: SIGABRT\n");
  EXPECT_TRUE(Dumped());
}

TEST_F(CrashHandlerDeathTest, APreviousTerminateHandlerRunsAfterTheDump) {
  EXPECT_EXIT(
      {
        std::set_terminate([] {
          Say("previous terminate handler\n");
          ::_exit(44);
        });
        Arm();
        std::thread([] { throw std::runtime_error("boom"); }).join();
      },
      ::testing::ExitedWithCode(44),
      "terminate called after throwing .*boom\n.*dump complete.*\nprevious terminate handler\n");
  EXPECT_TRUE(Dumped());
}

char* g_guarded = nullptr;

// Makes the faulting page writable and returns: the write is retried and
// succeeds (what a GC's write barrier or a JIT's guard page does).
void FixTheFault(int, siginfo_t* info, void*) {
  if (info->si_addr == g_guarded) ::mprotect(g_guarded, 4096, PROT_READ | PROT_WRITE);
}

TEST_F(CrashHandlerDeathTest, APreviousHandlerThatFixesTheFaultLetsTheProcessGoOn) {
  EXPECT_EXIT(
      {
        g_guarded = static_cast<char*>(
            ::mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        Install(SIGSEGV, &FixTheFault, nullptr);
        Arm();
        *reinterpret_cast<volatile char*>(g_guarded) = 7;
        // Later faults go straight to it: one dump per process.
        ::mprotect(g_guarded, 4096, PROT_READ);
        *reinterpret_cast<volatile char*>(g_guarded) = 8;
        Say(g_guarded[0] == 8 ? "went on\n" : "lost the write\n");
        _exit(0);
      },
      ::testing::ExitedWithCode(0), "dump complete.*\nwent on\n");
  EXPECT_TRUE(Dumped());
}

TEST_F(CrashHandlerDeathTest, ASentSignalTheProgramIgnoresIsStillIgnoredAfterTheDump) {
  EXPECT_EXIT(
      {
        ::signal(SIGBUS, SIG_IGN);
        Arm();
        ::raise(SIGBUS);
        Say("still here\n");
        _exit(0);
      },
      ::testing::ExitedWithCode(0), "dump complete.*\nstill here\n");
  EXPECT_TRUE(Dumped());
}

TEST_F(CrashHandlerDeathTest, InstallingTwiceDoesNotChainToItself) {
  EXPECT_EXIT(
      {
        Arm();
        if (!InstallCrashHandler().ok()) _exit(99);
        *reinterpret_cast<volatile int*>(g_bad) = 1;
      },
      ::testing::KilledBySignal(SIGSEGV), "dump complete");
  EXPECT_TRUE(Dumped());
}

TEST(CrashHandlerTest, AltStackForAnotherThread) {
  std::thread t([] {
    ASSERT_THAT(InstallAltStackForCurrentThread(128 << 10), IsOk());
    stack_t ss;
    ASSERT_EQ(::sigaltstack(nullptr, &ss), 0);
    EXPECT_FALSE(ss.ss_flags & SS_DISABLE);
    EXPECT_GE(ss.ss_size, 128u << 10);
    // A second call keeps the stack it has.
    ASSERT_THAT(InstallAltStackForCurrentThread(64 << 10), IsOk());
    stack_t again;
    ::sigaltstack(nullptr, &again);
    EXPECT_EQ(again.ss_sp, ss.ss_sp);
  });
  t.join();
}

TEST(CrashHandlerTest, SignalNames) {
  EXPECT_STREQ(SignalAbbrev(SIGSEGV), "SEGV");
  EXPECT_STREQ(SignalAbbrev(SIGABRT), "ABRT");
  EXPECT_STREQ(SignalAbbrev(SIGFPE), "FPE");
  EXPECT_STREQ(SignalAbbrev(1000), "?");
  EXPECT_STREQ(SignalAbbrev(SIGRTMIN), "?");  // glibc names no real-time signal
}

}  // namespace
}  // namespace cppdiag::dump
