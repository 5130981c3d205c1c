#include "common/parse.h"

#include <gtest/gtest.h>

namespace cppdiag {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ParseSize, AcceptsPlainBytesAndBinaryUnits) {
  EXPECT_EQ(*ParseSize("0"), 0u);
  EXPECT_EQ(*ParseSize("1048576"), 1048576u);
  EXPECT_EQ(*ParseSize("512K"), 512u * 1024);
  EXPECT_EQ(*ParseSize("512kb"), 512u * 1024);
  EXPECT_EQ(*ParseSize("512KiB"), 512u * 1024);
  EXPECT_EQ(*ParseSize("512M"), 512ull << 20);
  EXPECT_EQ(*ParseSize("1.5G"), 3ull << 29);
  EXPECT_EQ(*ParseSize(" 2T "), 2ull << 40);
  EXPECT_EQ(*ParseSize("17B"), 17u);
}

TEST(ParseSize, RejectsGarbageWithAClearMessage) {
  for (const char* bad : {"", "M", "-5M", "5X", "5MM", "1.5", "12 parsecs", "99999999999P"}) {
    auto r = ParseSize(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find("size"), std::string::npos) << r.error().message();
  }
}

TEST(ParseDuration, AcceptsUnits) {
  EXPECT_EQ(*ParseDuration("10s"), seconds(10));
  EXPECT_EQ(*ParseDuration("10"), seconds(10));
  EXPECT_EQ(*ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(*ParseDuration("2m"), seconds(120));
  EXPECT_EQ(*ParseDuration("1h"), seconds(3600));
  EXPECT_EQ(*ParseDuration("250us"), std::chrono::microseconds(250));
  EXPECT_EQ(*ParseDuration("1.5s"), milliseconds(1500));
}

TEST(ParseDuration, RejectsGarbage) {
  for (const char* bad : {"", "s", "-1s", "10 fortnights", "1e400s"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

TEST(ParseSizeOrPercent, PercentResolvesAgainstTheWhole) {
  auto p = *ParseSizeOrPercent("75%");
  EXPECT_TRUE(p.is_percent);
  EXPECT_DOUBLE_EQ(p.percent, 75.0);
  EXPECT_EQ(p.Resolve(256ull << 20), 192ull << 20);
  auto b = *ParseSizeOrPercent("512M");
  EXPECT_FALSE(b.is_percent);
  EXPECT_EQ(b.Resolve(1), 512ull << 20);
  EXPECT_FALSE(ParseSizeOrPercent("0%").ok());
  EXPECT_FALSE(ParseSizeOrPercent("101%").ok());
  EXPECT_FALSE(ParseSizeOrPercent("lots").ok());
}

TEST(ParsePercent, AcceptsWithOrWithoutSign) {
  EXPECT_DOUBLE_EQ(*ParsePercent("85"), 85.0);
  EXPECT_DOUBLE_EQ(*ParsePercent("85%"), 85.0);
  EXPECT_DOUBLE_EQ(*ParsePercent("99.5"), 99.5);
  EXPECT_FALSE(ParsePercent("150").ok());
  EXPECT_FALSE(ParsePercent("x%").ok());
}

TEST(ParseInt, ChecksRangeAndWholeInput) {
  EXPECT_EQ(*ParseInt("8080", 1, 65535), 8080);
  EXPECT_FALSE(ParseInt("0", 1, 65535).ok());
  EXPECT_FALSE(ParseInt("80x", 1, 65535).ok());
  EXPECT_FALSE(ParseInt("", 1, 65535).ok());
  EXPECT_NE(ParseInt("70000", 1, 65535).error().message().find("out of range"), std::string::npos);
}

TEST(FormatBytes, PicksAUnit) {
  EXPECT_EQ(FormatBytes(17), "17 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(512ull << 20), "512.0 MiB");
}

}  // namespace
}  // namespace cppdiag
