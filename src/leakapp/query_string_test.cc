#include "leakapp/query_string.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace leakapp {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs ParamsOf(std::string_view target) {
  SplitTarget split = SplitRequestTarget(target);
  return Pairs(split.params.begin(), split.params.end());
}

TEST(PercentDecodeTest, DecodesEscapesAndPlusOnlyWhenAsked) {
  EXPECT_EQ(PercentDecode("%41%62c", false), "Abc");
  EXPECT_EQ(PercentDecode("a+b%2B", true), "a b+");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(PercentDecode("%e2%82%ac", false), "\xe2\x82\xac");
}

TEST(PercentDecodeTest, KeepsMalformedEscapes) {
  EXPECT_EQ(PercentDecode("100%", true), "100%");
  EXPECT_EQ(PercentDecode("%4", true), "%4");
  EXPECT_EQ(PercentDecode("%zz1", true), "%zz1");
  EXPECT_EQ(PercentDecode("%%41", true), "%A");
}

TEST(SplitRequestTargetTest, SplitsPathAndQuery) {
  SplitTarget split = SplitRequestTarget("/trigger%4DemoryLeak?chunkKb=1%30&pattern=vector");
  EXPECT_EQ(split.path, "/triggerMemoryLeak");
  EXPECT_EQ(ParamsOf("/x?chunkKb=1%30&pattern=vector"),
            (Pairs{{"chunkKb", "10"}, {"pattern", "vector"}}));
  EXPECT_EQ(SplitRequestTarget("/a+b?").path, "/a+b");
  EXPECT_TRUE(SplitRequestTarget("/healthz").params.empty());
}

TEST(SplitRequestTargetTest, KeepsRepeatedKeysInOrderAndDropsEmptyKeys) {
  EXPECT_EQ(ParamsOf("/x?a=1&a=2&&=3&b&c=x+y#frag"),
            (Pairs{{"a", "1"}, {"a", "2"}, {"b", ""}, {"c", "x y"}}));
  EXPECT_EQ(ParamsOf("/x?k%3Dv=a%26b"), (Pairs{{"k=v", "a&b"}}));
}

TEST(SplitRequestTargetTest, RepeatedKeysReachTheParamsParserLastOneWins) {
  auto parsed = ParseLeakParams(SplitRequestTarget("/t?chunkKb=abc&chunkKb=2").params);
  ASSERT_TRUE(std::holds_alternative<LeakParams>(parsed));
  EXPECT_EQ(std::get<LeakParams>(parsed).chunk_kb, 2u);
}

}  // namespace
}  // namespace leakapp
