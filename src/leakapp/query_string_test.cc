#include "leakapp/query_string.h"

#include <gtest/gtest.h>

#include <string>
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

TEST(SplitRequestTargetTest, KeepsMalformedEscapesAsWrittenInPathAndQuery) {
  EXPECT_EQ(ParamsOf("/x?v=100%&w=%zz&u=%4&t=%%41&%=1"),
            (Pairs{{"%", "1"}, {"t", "%A"}, {"u", "%4"}, {"v", "100%"}, {"w", "%zz"}}));
  EXPECT_EQ(SplitRequestTarget("/a%zz%2").path, "/a%zz%2");
  EXPECT_EQ(SplitRequestTarget("/50%?x=%g0%0g").path, "/50%");
  EXPECT_EQ(ParamsOf("/50%?x=%g0%0g"), (Pairs{{"x", "%g0%0g"}}));
  // A valid escape right after a malformed one is still decoded.
  EXPECT_EQ(ParamsOf("/x?v=%%2B%"), (Pairs{{"v", "%+%"}}));
}

TEST(SplitRequestTargetTest, PlusIsASpaceInTheQueryOnly) {
  SplitTarget split = SplitRequestTarget("/a+b%20c?k+1=x+y%2B%20");
  EXPECT_EQ(split.path, "/a+b c");
  EXPECT_EQ(ParamsOf("/a+b?k+1=x+y%2B%20"), (Pairs{{"k 1", "x y+ "}}));
  EXPECT_EQ(ParamsOf("/x?+=+&++"), (Pairs{{" ", " "}, {"  ", ""}}));
}

TEST(SplitRequestTargetTest, RepeatedKeysAreAllKeptWhateverTheirSpelling) {
  // Equal keys keep their order (a multimap sorts by key only).
  EXPECT_EQ(ParamsOf("/x?b=1&a=2&b=3&%62=4&b"),
            (Pairs{{"a", "2"}, {"b", "1"}, {"b", "3"}, {"b", "4"}, {"b", ""}}));
  EXPECT_EQ(ParamsOf("/x?a&a=&a=="), (Pairs{{"a", ""}, {"a", ""}, {"a", "="}}));
}

TEST(SplitRequestTargetTest, BytesOutsideTheSyntaxComeBackAsWritten) {
  for (int b = 0; b < 256; ++b) {
    const std::string c(1, static_cast<char>(b));
    if (c != "?") {
      EXPECT_EQ(SplitRequestTarget("/" + c).path, "/" + c) << b;
    }
    if (c != "&" && c != "#" && c != "+") {
      EXPECT_EQ(ParamsOf("/x?v=" + c), (Pairs{{"v", c}})) << b;
    }
  }
  EXPECT_EQ(ParamsOf("/x?pattern=\xc3\xa9|{}"), (Pairs{{"pattern", "\xc3\xa9|{}"}}));
}

TEST(SplitRequestTargetTest, FragmentsAndTargetsThatAreNotOriginForm) {
  EXPECT_EQ(SplitRequestTarget("/p#a?x").path, "/p#a");
  EXPECT_EQ(ParamsOf("/p#a?x"), (Pairs{{"x", ""}}));
  EXPECT_EQ(ParamsOf("/x?a=1#b=2&c=3"), (Pairs{{"a", "1"}}));
  EXPECT_EQ(SplitRequestTarget("*").path, "*");
  SplitTarget absolute = SplitRequestTarget("http://h/x%41?a=1");
  EXPECT_EQ(absolute.path, "http://h/xA");
  EXPECT_EQ(ParamsOf("http://h/x%41?a=1"), (Pairs{{"a", "1"}}));
  EXPECT_EQ(SplitRequestTarget("?a=1").path, "");
  EXPECT_EQ(ParamsOf("?a=1"), (Pairs{{"a", "1"}}));
}

TEST(SplitRequestTargetTest, RepeatedKeysReachTheParamsParserLastOneWins) {
  auto parsed = ParseLeakParams(SplitRequestTarget("/t?chunkKb=abc&chunkKb=2").params);
  ASSERT_TRUE(std::holds_alternative<LeakParams>(parsed));
  EXPECT_EQ(std::get<LeakParams>(parsed).chunk_kb, 2u);
}

}  // namespace
}  // namespace leakapp
