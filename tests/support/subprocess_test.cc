#include "support/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

namespace cppdiag::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(SubprocessTest, WaitReturnsTheExitCodeAndTheOutput) {
  Subprocess p({.argv = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}});
  auto t = p.Wait(seconds(60));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->exit_code, 3);
  EXPECT_FALSE(t->signal.has_value());
  EXPECT_EQ(p.Stdout(), "out\n");
  EXPECT_EQ(p.Stderr(), "err\n");
  EXPECT_FALSE(p.running());
}

TEST(SubprocessTest, WaitTimesOutOnARunningChildThenSeesItsSignal) {
  // The child waits for an hour: it ends only when killed.
  Subprocess p({.argv = {"/bin/sleep", "3600"}});
  EXPECT_FALSE(p.Wait(milliseconds(20)).has_value());
  EXPECT_TRUE(p.running());
  p.Signal(SIGTERM);
  auto t = p.Wait(seconds(60));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->signal, SIGTERM);
  EXPECT_EQ(t->ToString(), "signal Terminated");
}

TEST(SubprocessTest, TheOutputDirectoryGoesWithTheObject) {
  std::string dir;
  {
    Subprocess p({.argv = {"/bin/true"}});
    dir = p.temp_dir();
    EXPECT_TRUE(std::filesystem::is_directory(dir));
    ASSERT_TRUE(p.Wait(seconds(60)).has_value());
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(WaitForListeningPortTest, ReadsThePortOfTheFirstCompleteLine) {
  Subprocess p({.argv = {"/bin/sh", "-c",
                         "printf 'starting\\nListening on http://127.0.0.1:4242\\n'; "
                         "printf 'Listening on http://127.0.0.1:5353\\n'; exec sleep 3600"}});
  std::optional<int> port = WaitForListeningPort(p, seconds(60));
  ASSERT_TRUE(port.has_value()) << p.Stdout();
  EXPECT_EQ(*port, 4242);
  EXPECT_TRUE(p.running());
}

TEST(WaitForListeningPortTest, AChildThatEndsWithoutTheLineGivesNothing) {
  // A line cut before its end is no port either.
  Subprocess p({.argv = {"/bin/sh", "-c", "printf 'Listening on http://127.0.0.1:42'; exit 1"}});
  EXPECT_EQ(WaitForListeningPort(p, seconds(60)), std::nullopt);
  EXPECT_FALSE(p.running());
}

}  // namespace
}  // namespace cppdiag::testing
