#include "common/raw_log.h"

#include <gtest/gtest.h>

#include <climits>
#include <string>

namespace cppdiag {
namespace {

TEST(RawLine, FormatsNumbersWithoutAllocating) {
  RawLine l;
  l.Add("pid ").Dec(-42).Add(" ").Udec(18446744073709551615ull).Add(" ").Hex(0xdeadbeef);
  l.Add(" ").Dec(INT64_MIN);
  EXPECT_EQ(l.view(), "pid -42 18446744073709551615 0xdeadbeef -9223372036854775808");
}

TEST(RawLine, TruncatesInsteadOfOverflowing) {
  RawLine l;
  std::string big(2000, 'a');
  l.Add(big);
  EXPECT_EQ(l.view().size(), 511u);
}

TEST(ErrnoName, NamesEveryErrnoGlibcKnows) {
  EXPECT_STREQ(ErrnoName(ENOSPC), "ENOSPC");
  EXPECT_STREQ(ErrnoName(EBUSY), "EBUSY");
  EXPECT_STREQ(ErrnoName(ETIMEDOUT), "ETIMEDOUT");
  EXPECT_STREQ(ErrnoName(ECONNREFUSED), "ECONNREFUSED");
  EXPECT_STREQ(ErrnoName(123456), "E?");
}

}  // namespace
}  // namespace cppdiag
