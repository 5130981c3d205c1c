#include "leakapp/process_metrics.h"

#include <gtest/gtest.h>

#include <chrono>

namespace leakapp {
namespace {

using namespace std::chrono_literals;

TEST(MetricsCacheTest, SharesAReadingUntilItIsOldOrInvalidated) {
  MetricsCache cache(1h);
  auto first = cache.Read();
  ASSERT_TRUE(first.ok());
  auto again = cache.Read();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->counters.monotonic_ns, first->counters.monotonic_ns);

  cache.Invalidate();
  auto fresh = cache.Read();
  ASSERT_TRUE(fresh.ok());
  EXPECT_GT(fresh->counters.monotonic_ns, first->counters.monotonic_ns);
  EXPECT_GT(fresh->rss_bytes, 0u);
}

TEST(MetricsCacheTest, ZeroMaxAgeReadsEveryTime) {
  MetricsCache cache(0ms);
  auto first = cache.Read();
  auto second = cache.Read();
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_GT(second->counters.monotonic_ns, first->counters.monotonic_ns);
}

}  // namespace
}  // namespace leakapp
