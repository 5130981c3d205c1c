#include "diag/dump/crash_handler.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <stdexcept>
#include <thread>

#include "diag/dump/self_dump.h"

namespace cppdiag::dump {
namespace {

namespace fs = std::filesystem;

class CrashHandlerDeathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cppdiag-crash-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  // Runs in the death test's child.
  void Arm() {
    SelfDumpConfig c;
    c.default_type = DumpType::kMini;
    c.name_template = dir_ + "/core.%r";
    if (!PrepareSelfDump(c).ok() || !InstallCrashHandler().ok()) _exit(99);
  }
  bool Dumped() const { return fs::exists(dir_ + "/core.crash"); }
  std::string dir_;
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

TEST(CrashHandlerTest, AltStackForAnotherThread) {
  std::thread t([] {
    ASSERT_TRUE(InstallAltStackForCurrentThread(128 << 10).ok());
    stack_t ss;
    ASSERT_EQ(::sigaltstack(nullptr, &ss), 0);
    EXPECT_FALSE(ss.ss_flags & SS_DISABLE);
    EXPECT_GE(ss.ss_size, 128u << 10);
    // A second call keeps the stack it has.
    ASSERT_TRUE(InstallAltStackForCurrentThread(64 << 10).ok());
    stack_t again;
    ::sigaltstack(nullptr, &again);
    EXPECT_EQ(again.ss_sp, ss.ss_sp);
  });
  t.join();
}

TEST(CrashHandlerTest, SignalNames) {
  EXPECT_STREQ(SignalName(SIGSEGV), "SIGSEGV");
  EXPECT_STREQ(SignalName(SIGABRT), "SIGABRT");
  EXPECT_STREQ(SignalName(SIGFPE), "SIGFPE");
  EXPECT_STREQ(SignalName(1000), "SIG?");
}

}  // namespace
}  // namespace cppdiag::dump
