#include "diag/dump/oom_watchdog.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <cstring>

#include "support/scoped_cgroup.h"
#include "support/status_matchers.h"
#include "support/subprocess.h"

namespace cppdiag {
namespace {

using ::cppdiag::testing::IsOk;

using testing::ScopedCgroup;

// A child in `cg` that touches `mb` MiB, one MiB every `ms` milliseconds,
// then waits to be killed.
pid_t StartGrowingChild(const ScopedCgroup& cg, int mb, int ms) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string self = std::to_string(::getpid());
    int fd = ::open(cg.procs_file().c_str(), O_WRONLY);
    if (fd < 0 || ::write(fd, self.data(), self.size()) < 0) _exit(3);
    ::close(fd);
    for (int i = 0; i < mb; ++i) {
      void* p =
          ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      std::memset(p, 0x5a, 1 << 20);
      ::usleep(static_cast<useconds_t>(ms) * 1000);
    }
    ::pause();
    _exit(0);
  }
  return pid;
}

void RunWatchdog(bool kernel_events) {
  ScopedCgroup cg(128u << 20);
  if (!cg.ok()) GTEST_SKIP() << cg.why_not();
  std::atomic<uint64_t> seen_usage{0};
  std::atomic<int> calls{0};
  OomWatchdog dog({.threshold_percent = 50,
                   .cgroup_version = cg.version(),
                   .cgroup_dir = cg.dir(),
                   .limit_bytes = 128u << 20,
                   .poll_interval = std::chrono::milliseconds(5),
                   .use_kernel_events = kernel_events,
                   .on_cross = [&](uint64_t usage, uint64_t) {
                     seen_usage = usage;
                     ++calls;
                   }});
  ASSERT_THAT(dog.Start(), IsOk());
  // This machine's v1 memory controller takes threshold events; v2 has none.
  EXPECT_STREQ(dog.mechanism(), kernel_events && cg.version() == 1 ? "eventfd" : "poll");
  pid_t child = StartGrowingChild(cg, 100, 2);
  bool fired = testing::PollUntil([&] { return dog.fired(); }, std::chrono::seconds(20));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_TRUE(fired) << "mechanism " << dog.mechanism();
  dog.Stop();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_GE(seen_usage.load(), 64u << 20);
  // Caught early: within a few MiB of the threshold, far from the limit.
  EXPECT_LT(seen_usage.load(), 96u << 20) << "mechanism " << dog.mechanism();
}

TEST(OomWatchdog, FiresOnceNearTheThresholdWithKernelEvents) { RunWatchdog(true); }
TEST(OomWatchdog, FiresOnceNearTheThresholdByPolling) { RunWatchdog(false); }

TEST(OomWatchdog, StopsPromptlyWithoutFiring) {
  ScopedCgroup cg(512u << 20);
  if (!cg.ok()) GTEST_SKIP() << cg.why_not();
  OomWatchdog dog({.threshold_percent = 90,
                   .cgroup_version = cg.version(),
                   .cgroup_dir = cg.dir(),
                   .limit_bytes = 512u << 20,
                   .on_cross = [](uint64_t, uint64_t) { FAIL() << "fired"; }});
  ASSERT_THAT(dog.Start(), IsOk());
  dog.Stop();
  EXPECT_FALSE(dog.fired());
}

TEST(OomWatchdog, RejectsBadOptions) {
  EXPECT_FALSE(OomWatchdog({.threshold_percent = 0, .limit_bytes = 1}).Start().ok());
  EXPECT_FALSE(OomWatchdog({.threshold_percent = 50, .limit_bytes = 0}).Start().ok());
  auto missing = OomWatchdog({.threshold_percent = 50,
                              .cgroup_version = 2,
                              .cgroup_dir = "/nonexistent",
                              .limit_bytes = 1})
                     .Start();
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("/nonexistent/memory.current"), std::string::npos);
}

}  // namespace
}  // namespace cppdiag
