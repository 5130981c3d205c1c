// The dump analyze prompt: commands read from a pipe, and on a terminal (a
// pty) libedit's line editing and history: the up arrow brings the last
// command back, and the history is saved in $HOME.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "analyze_support.h"
#include "support/subprocess.h"

namespace cppdiag::analyze_test {
namespace {

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

TEST(AnalyzePromptTest, ReadsCommandsFromAPipe) {
  TempDir dir;
  const std::string core = dir.path() + "/core";
  ASSERT_GT(WriteOurDump("mini", core, 2), 0);
  std::string out = cppdiag::testing::RunToCompletion(
      {"/bin/sh", "-c",
       "printf 'threads\\n\\nbt\\nexit\\ninfo\\n' | \"$0\" dump analyze \"$1\"; echo rc=$?",
       cppdiag::testing::BuiltBinary("cppdiag"), core});
  EXPECT_NE(out.find("3 threads"), std::string::npos) << out;
  EXPECT_NE(out.find("Thread "), std::string::npos) << out;
  EXPECT_EQ(out.find("dump type:"), std::string::npos) << "info ran after exit: " << out;
  EXPECT_EQ(out.find("(cppdiag)"), std::string::npos) << "a prompt on a pipe: " << out;
  EXPECT_NE(out.find("rc=0"), std::string::npos) << out;
}

// Reads from `fd` until `needle` has appeared `times` times in all that was
// read, the child closed the terminal, or 60 seconds passed.
bool ReadUntil(int fd, std::string* all, const std::string& needle, size_t times) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (Count(*all, needle) < times) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    all->append(buf, static_cast<size_t>(n));
  }
  return true;
}

TEST(AnalyzePromptTest, OnATerminalTheUpArrowRecallsHistoryAndItIsSaved) {
  TempDir dir;
  const std::string core = dir.path() + "/core";
  ASSERT_GT(WriteOurDump("mini", core, 2), 0);
  const std::string cppdiag = cppdiag::testing::BuiltBinary("cppdiag");
  const std::string home = dir.path();
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv("HOME", home.c_str(), 1);
    ::setenv("TERM", "xterm", 1);
    ::execl(cppdiag.c_str(), cppdiag.c_str(), "dump", "analyze", core.c_str(), nullptr);
    ::_exit(127);
  }
  std::string all;
  ASSERT_TRUE(ReadUntil(master, &all, "(cppdiag) ", 1)) << all;
  ASSERT_EQ(::write(master, "threads\r", 8), 8);
  ASSERT_TRUE(ReadUntil(master, &all, "(cppdiag) ", 2)) << all;
  EXPECT_EQ(Count(all, "3 threads"), 1u) << all;
  ASSERT_EQ(::write(master, "\x1b[A\r", 4), 4);  // up arrow: "threads" again
  ASSERT_TRUE(ReadUntil(master, &all, "(cppdiag) ", 3)) << all;
  EXPECT_EQ(Count(all, "3 threads"), 2u) << all;
  ASSERT_EQ(::write(master, "exit\r", 5), 5);
  int status = 0;
  std::string rest;
  ReadUntil(master, &rest, "never printed", 1);  // drains until the child closes the pty
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::close(master);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::string history = cppdiag::testing::ReadAll(home + "/.cppdiag_analyze_history");
  EXPECT_NE(history.find("threads"), std::string::npos) << history;
}

}  // namespace
}  // namespace cppdiag::analyze_test
