#include "diag/dump/internal/dump_name.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace cppdiag::dump {
namespace {

std::string Expand(std::string_view tmpl, size_t size = 256, int* err = nullptr) {
  DumpNameVars v{42, "leak/app", "pod-1", 1700000000, "oom-watchdog"};
  std::string out(size, '\x7f');
  int e = ExpandDumpName(tmpl, v, out.data(), out.size());
  if (err != nullptr) *err = e;
  return std::string(out.c_str());
}

TEST(DumpNameTest, ExpandsEverySpecifier) {
  EXPECT_EQ(Expand("/dumps/core.%e.%p.%t"), "/dumps/core.leak_app.42.1700000000");
  EXPECT_EQ(Expand("%h-%r-%%-%p"), "pod-1-oom-watchdog-%-42");
}

TEST(DumpNameTest, UnknownSpecifiersAndATrailingPercentStay) {
  EXPECT_EQ(Expand("core.%x.%"), "core.%x.%");
}

TEST(DumpNameTest, ValuesCannotAddDirectories) {
  DumpNameVars v{1, "../../etc", "a/b", 0, "x/y"};
  char out[64];
  ASSERT_EQ(ExpandDumpName("/d/%e-%h-%r", v, out, sizeof out), 0);
  EXPECT_STREQ(out, "/d/.._.._etc-a_b-x_y");
}

TEST(DumpNameTest, TooLongIsReportedAndTerminated) {
  int err = 0;
  std::string s = Expand("/dumps/core.%e.%p.%t", 12, &err);
  EXPECT_EQ(err, ENAMETOOLONG);
  EXPECT_EQ(s, "/dumps/core");
  EXPECT_EQ(ExpandDumpName("x", {}, nullptr, 0), ENAMETOOLONG);
}

TEST(DumpNameTest, NegativeAndZeroNumbers) {
  DumpNameVars v{0, "", "", -5, ""};
  char out[32];
  ASSERT_EQ(ExpandDumpName("%p.%t", v, out, sizeof out), 0);
  EXPECT_STREQ(out, "0.-5");
}

}  // namespace
}  // namespace cppdiag::dump
