#include "leakapp/leak_engine.h"

#include <gtest/gtest.h>

#include <chrono>

#include "support/poll.h"

namespace leakapp {
namespace {

// Waits (bounded) until the leak thread has ended by itself.
bool WaitForState(const LeakEngine& engine, LeakState state) {
  return cppdiag::testing::PollUntil([&] { return engine.Snapshot().state == state; },
                                     std::chrono::seconds(10), std::chrono::milliseconds(1));
}

TEST(LeakEngine, StopsExactlyAtMaxMbWithEveryPattern) {
  for (LeakPattern pattern : kAllLeakPatterns) {
    LeakEngine engine;
    ASSERT_TRUE(engine.Start({pattern, /*chunk_kb=*/300, /*interval_ms=*/0, /*max_mb=*/2}));
    ASSERT_TRUE(WaitForState(engine, LeakState::kStopped)) << LeakPatternName(pattern);
    LeakSnapshot s = engine.Snapshot();
    EXPECT_EQ(s.leaked_bytes, 2u << 20) << LeakPatternName(pattern);
    EXPECT_EQ(s.rounds, 7u);  // 6 * 300 KiB, then the 248 KiB left
    EXPECT_EQ(engine.Release(), 2u << 20);
    EXPECT_EQ(engine.Snapshot().state, LeakState::kIdle);
    EXPECT_EQ(engine.Snapshot().leaked_bytes, 0u);
  }
}

TEST(LeakEngine, RefusesASecondStartAndStopsOnRequest) {
  LeakEngine engine;
  ASSERT_TRUE(engine.Start({LeakPattern::kVector, 4, 3600 * 1000, 0}));
  EXPECT_FALSE(engine.Start({LeakPattern::kCache, 4, 0, 0}));
  EXPECT_EQ(engine.Snapshot().state, LeakState::kRunning);
  EXPECT_EQ(engine.Snapshot().params.pattern, LeakPattern::kVector);
  EXPECT_TRUE(engine.Stop());  // wakes the thread out of its hour-long wait
  LeakSnapshot s = engine.Snapshot();
  EXPECT_EQ(s.state, LeakState::kStopped);
  EXPECT_EQ(s.leaked_bytes, 4096u);  // the first round runs at once
  EXPECT_FALSE(engine.Stop());
  ASSERT_TRUE(engine.Start({LeakPattern::kCache, 4, 0, 1}));  // Total includes the 4 KiB
  ASSERT_TRUE(WaitForState(engine, LeakState::kStopped));
  EXPECT_EQ(engine.Snapshot().leaked_bytes, 1u << 20);
  EXPECT_EQ(engine.Snapshot().rounds_total, 1u + 255u);
}

}  // namespace
}  // namespace leakapp
