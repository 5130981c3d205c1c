#include "support/poll.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace cppdiag::testing {
namespace {

using std::chrono::milliseconds;

TEST(PollUntilTest, ReturnsAtOnceWhenTheConditionHolds) {
  int calls = 0;
  EXPECT_TRUE(PollUntil(
      [&] {
        ++calls;
        return true;
      },
      milliseconds(0)));
  EXPECT_EQ(calls, 1);
}

TEST(PollUntilTest, WaitsForAConditionAnotherThreadMakesTrue) {
  std::atomic<bool> flag{false};
  std::atomic<int> calls{0};
  std::thread setter([&] {
    // Set only once the poller has looked a few times: the wait is real.
    while (calls.load() < 3) std::this_thread::yield();
    flag = true;
  });
  EXPECT_TRUE(PollUntil(
      [&] {
        ++calls;
        return flag.load();
      },
      milliseconds(60000), milliseconds(1)));
  setter.join();
  EXPECT_GE(calls.load(), 4);
}

TEST(PollUntilTest, GivesUpAfterTheTimeoutAndChecksOnceMore) {
  int calls = 0;
  EXPECT_FALSE(PollUntil(
      [&] {
        ++calls;
        return false;
      },
      milliseconds(30), milliseconds(10)));
  EXPECT_GE(calls, 2);  // before the deadline, and once after it
}

}  // namespace
}  // namespace cppdiag::testing
