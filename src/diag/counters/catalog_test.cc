#include "diag/counters/catalog.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

namespace cppdiag::counters {
namespace {

TEST(Catalog, NamesAreUniquePrometheusSeriesOfTheirFamily) {
  const std::regex family_re("cppdiag_[a-z0-9_]+");
  std::set<std::string> seen;
  for (const CounterInfo& c : Catalog()) {
    EXPECT_TRUE(seen.insert(c.name).second) << "duplicate " << c.name;
    EXPECT_TRUE(std::regex_match(c.family, family_re)) << c.family;
    std::string expected = c.family;
    if (c.label_name != nullptr) {
      expected += std::string("{") + c.label_name + "=\"" + c.label_value + "\"}";
    }
    EXPECT_EQ(c.name, expected);
    EXPECT_EQ(FindCounter(c.name), &c);
    EXPECT_NE(std::string(c.description), "") << c.name;
    EXPECT_NE(std::string(c.title), "") << c.name;
    EXPECT_NE(std::string(c.when), "") << c.name;
    // Prometheus conventions: counters end in _total, gauges do not.
    bool total = std::string(c.family).ends_with("_total");
    EXPECT_EQ(total, c.kind == CounterKind::kCounter) << c.name;
  }
  EXPECT_EQ(FindCounter("cppdiag_no_such_counter"), nullptr);
}

TEST(Catalog, SeriesOfOneFamilyAreAdjacentAndShareTheirHelp) {
  auto all = Catalog();
  std::set<std::string> closed;
  for (size_t i = 0; i < all.size(); ++i) {
    std::string family = all[i].family;
    EXPECT_FALSE(closed.count(family)) << family << " is split";
    if (i + 1 < all.size() && family == all[i + 1].family) {
      EXPECT_STREQ(all[i].description, all[i + 1].description);
      EXPECT_EQ(all[i].kind, all[i + 1].kind);
    } else {
      closed.insert(family);
    }
  }
}

TEST(Catalog, HasWhatTheIssueAsksFor) {
  for (const char* name :
       {names::kRss, names::kHeapInUse, names::kHeapSampledLive, names::kAllocationRate,
        names::kCgroupUsage, names::kCgroupLimit, names::kCgroupPercent, names::kCpuCorePercent,
        names::kCpuQuotaPercent, names::kThreads, names::kOpenFds, names::kMinorFaults,
        names::kMajorFaults, names::kDumpsWritten}) {
    EXPECT_NE(FindCounter(name), nullptr) << name;
  }
  EXPECT_EQ(FindCounter(names::kAllocationRate)->kind, CounterKind::kDerived);
  EXPECT_STREQ(CounterUnitName(FindCounter(names::kAllocationRate)->unit), "bytes/s");
  EXPECT_STREQ(CounterKindName(CounterKind::kCounter), "counter");
}

}  // namespace
}  // namespace cppdiag::counters
