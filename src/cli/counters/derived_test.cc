#include "cli/counters/derived.h"

#include <gtest/gtest.h>

#include "diag/counters/catalog.h"
#include "support/status_matchers.h"

namespace cppdiag::counters {
namespace {

using ::cppdiag::testing::IsOk;

Sample At(int64_t ms, std::map<std::string, double, std::less<>> values) {
  Sample s;
  s.pid = 7;
  s.monotonic_ns = ms * 1000000;
  s.values = std::move(values);
  return s;
}

TEST(Derived, RatesOverTheTargetsMonotonicClock) {
  Sample a = At(1000, {{names::kCpuSeconds, 2.0}, {names::kHeapAllocated, 1e6}});
  Sample b = At(1500, {{names::kCpuSeconds, 2.25}, {names::kHeapAllocated, 3e6}});
  AddDerived(&a, &b);
  EXPECT_DOUBLE_EQ(*b.Get(names::kCpuCorePercent), 50.0);  // 0.25 s of CPU in 0.5 s
  EXPECT_DOUBLE_EQ(*b.Get(names::kAllocationRate), 4e6);
  EXPECT_FALSE(b.Get(names::kCpuQuotaPercent)) << "no quota: no percent of it";
}

TEST(Derived, CpuPercentOfTheQuotaWhenThereIsOne) {
  Sample a = At(0, {{names::kCpuSeconds, 0.0}, {names::kCpuQuota, 0.5}});
  Sample b = At(2000, {{names::kCpuSeconds, 0.5}, {names::kCpuQuota, 0.5}});
  AddDerived(&a, &b);
  EXPECT_DOUBLE_EQ(*b.Get(names::kCpuCorePercent), 25.0);
  EXPECT_DOUBLE_EQ(*b.Get(names::kCpuQuotaPercent), 50.0);
}

TEST(Derived, NoRatesFromOneSampleOrAcrossProcessesOrBackwards) {
  Sample first = At(0, {{names::kCpuSeconds, 1.0}, {names::kHeapAllocated, 10}});
  AddDerived(nullptr, &first);
  EXPECT_FALSE(first.Get(names::kCpuCorePercent));

  Sample other = At(1000, {{names::kCpuSeconds, 2.0}});
  other.pid = 8;
  AddDerived(&first, &other);
  EXPECT_FALSE(other.Get(names::kCpuCorePercent));

  Sample same_time = At(0, {{names::kCpuSeconds, 2.0}});
  AddDerived(&first, &same_time);
  EXPECT_FALSE(same_time.Get(names::kCpuCorePercent));

  Sample back = At(1000, {{names::kCpuSeconds, 0.5}, {names::kHeapAllocated, 20}});
  AddDerived(&first, &back);
  EXPECT_FALSE(back.Get(names::kCpuCorePercent));
  EXPECT_DOUBLE_EQ(*back.Get(names::kAllocationRate), 10.0);
}

TEST(Derived, CgroupPercentNeedsALimit) {
  Sample s = At(0, {{names::kCgroupUsage, 25.0}, {names::kCgroupLimit, 200.0}});
  AddDerived(nullptr, &s);
  EXPECT_DOUBLE_EQ(*s.Get(names::kCgroupPercent), 12.5);
  Sample unlimited = At(0, {{names::kCgroupUsage, 25.0}});
  AddDerived(nullptr, &unlimited);
  EXPECT_FALSE(unlimited.Get(names::kCgroupPercent));
}

TEST(Derived, SampleJsonRoundTripAndErrors) {
  Sample s = At(5, {{names::kRss, 4096}, {names::kCpuQuota, 0.5}});
  s.unix_ns = 1795000000123000000;
  auto back = SampleFromJson(SampleToJson(s));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->pid, 7);
  EXPECT_EQ(back->monotonic_ns, s.monotonic_ns);
  EXPECT_EQ(back->unix_ns, s.unix_ns);
  EXPECT_EQ(back->values, s.values);
  EXPECT_TRUE(SampleToJson(s)["values"][names::kRss].is_number_integer());
  EXPECT_TRUE(SampleToJson(s)["values"][names::kCpuQuota].is_number_float());

  for (const char* bad :
       {R"([])", R"({"unix_ns": 1, "values": {}})", R"({"monotonic_ns": 1, "unix_ns": 1})",
        R"({"monotonic_ns": 1, "unix_ns": 1, "values": {"x": "1"}})"}) {
    auto r = SampleFromJson(nlohmann::json::parse(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find("malformed counters reply"), std::string::npos);
  }
}

}  // namespace
}  // namespace cppdiag::counters
