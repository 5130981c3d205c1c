#include "support/status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>

namespace cppdiag::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Result<int> Value(int v) { return v; }
Result<int> Fails(int code) { return Error(code, "open", "/x"); }
Status Ok() { return OkStatus(); }
Status Bad() { return Error::Invalid("size out of range"); }

TEST(StatusMatchersTest, IsOkMatchesResultsAndStatusesWithoutError) {
  EXPECT_THAT(Value(3), IsOk());
  EXPECT_THAT(Ok(), IsOk());
  EXPECT_THAT(Fails(ENOENT), Not(IsOk()));
  EXPECT_THAT(Bad(), Not(IsOk()));
}

TEST(StatusMatchersTest, IsOkExplainsAFailureWithTheMessage) {
  auto r = Fails(ENOENT);
  ::testing::StringMatchResultListener listener;
  EXPECT_FALSE(::testing::ExplainMatchResult(IsOk(), r, &listener));
  EXPECT_EQ(listener.str(), "which is open /x: No such file or directory");
}

TEST(StatusMatchersTest, StatusIsComparesTheCode) {
  EXPECT_THAT(Fails(ENOENT), StatusIs(ENOENT));
  EXPECT_THAT(Fails(ENOENT), Not(StatusIs(EACCES)));
  EXPECT_THAT(Value(1), Not(StatusIs(ENOENT)));
  EXPECT_THAT(Bad(), StatusIs(EINVAL));
  EXPECT_THAT(Ok(), Not(StatusIs(0))) << "an OK status is no error, whatever the code";
}

TEST(StatusMatchersTest, StatusIsWithAMessageMatcher) {
  EXPECT_THAT(Bad(), StatusIs(EINVAL, HasSubstr("out of range")));
  EXPECT_THAT(Bad(), StatusIs(EINVAL, "size out of range"));
  EXPECT_THAT(Bad(), Not(StatusIs(EINVAL, HasSubstr("missing"))));
  EXPECT_THAT(Bad(), Not(StatusIs(ENOENT, HasSubstr("out of range"))));
  EXPECT_THAT(Ok(), Not(StatusIs(EINVAL, HasSubstr(""))));
}

TEST(StatusMatchersTest, StatusIsExplainsCodeAndMessage) {
  ::testing::StringMatchResultListener listener;
  EXPECT_FALSE(::testing::ExplainMatchResult(StatusIs(EACCES), Fails(ENOENT), &listener));
  EXPECT_THAT(listener.str(), HasSubstr("which has code " + std::to_string(ENOENT)));
  EXPECT_THAT(listener.str(), HasSubstr("No such file or directory"));
}

TEST(StatusMatchersTest, ResultsPrintTheirError) {
  EXPECT_EQ(::testing::PrintToString(Value(1)), "OK");
  EXPECT_EQ(::testing::PrintToString(Fails(ENOENT)),
            "error " + std::to_string(ENOENT) + " (open /x: No such file or directory)");
}

TEST(StatusMatchersTest, AssertOkAndAssignTakesTheValue) {
  CPPDIAG_ASSERT_OK_AND_ASSIGN(int v, Value(42));
  EXPECT_EQ(v, 42);
  CPPDIAG_ASSERT_OK_AND_ASSIGN(auto p, Result<std::unique_ptr<int>>(std::make_unique<int>(7)));
  EXPECT_EQ(*p, 7);
}

void AssignsFromAFailure() {
  CPPDIAG_ASSERT_OK_AND_ASSIGN(int v, Fails(EIO));
  ADD_FAILURE() << "not reached: " << v;
}

TEST(StatusMatchersTest, AssertOkAndAssignFailsOnAnError) {
  ::testing::TestPartResultArray failures;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
    AssignsFromAFailure();
  }
  ASSERT_EQ(failures.size(), 1);
  EXPECT_TRUE(failures.GetTestPartResult(0).fatally_failed());
  EXPECT_THAT(failures.GetTestPartResult(0).message(), HasSubstr("Input/output error"));
}

}  // namespace
}  // namespace cppdiag::testing
