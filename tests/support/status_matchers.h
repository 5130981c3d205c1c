// gMock matchers for cppdiag::Status and cppdiag::Result<T> (common/status.h),
// after abseil's status_matchers:
//
//   ASSERT_THAT(OpenFile(path, O_RDONLY), IsOk());
//   EXPECT_THAT(ReadFileToString("/nonexistent"), StatusIs(ENOENT));
//   EXPECT_THAT(r, StatusIs(EINVAL, HasSubstr("out of range")));
//   CPPDIAG_ASSERT_OK_AND_ASSIGN(auto text, ReadFileToString(path));
//
// A failed match prints the error's message, so `<< r.error().message()` is
// not needed after them.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "common/status.h"

namespace cppdiag {

// How gtest prints these (found by argument-dependent lookup).
inline void PrintTo(const Error& e, std::ostream* os) {
  *os << "error " << e.code() << " (" << e.message() << ")";
}
template <typename T>
void PrintTo(const Result<T>& r, std::ostream* os) {
  if (r.ok()) {
    *os << "OK";
  } else {
    PrintTo(r.error(), os);
  }
}

namespace testing {

// Matches a Status or Result<T> that holds no error.
MATCHER(IsOk, negation ? "is an error" : "is OK") {
  if (arg.ok()) return true;
  *result_listener << "which is " << arg.error().message();
  return false;
}

// Matches a Status or Result<T> whose error has errno `code`; with a second
// argument, whose message() also matches `message_matcher` (a string or a
// matcher such as ::testing::HasSubstr).
MATCHER_P(StatusIs, code,
          std::string(negation ? "is not an error with code " : "is an error with code ") +
              ::testing::PrintToString(code)) {
  if (arg.ok()) {
    *result_listener << "which is OK";
    return false;
  }
  *result_listener << "which has code " << arg.error().code() << " (" << arg.error().message()
                   << ")";
  return arg.error().code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           std::string(negation ? "is not an error with code " : "is an error with code ") +
               ::testing::PrintToString(code) + " and a message that " +
               ::testing::DescribeMatcher<std::string>(message_matcher, negation)) {
  if (arg.ok()) {
    *result_listener << "which is OK";
    return false;
  }
  *result_listener << "which has code " << arg.error().code() << " and message \""
                   << arg.error().message() << "\"";
  return arg.error().code() == code &&
         ::testing::Matches(::testing::SafeMatcherCast<const std::string&>(message_matcher))(
             arg.error().message());
}

}  // namespace testing
}  // namespace cppdiag

// Declares `lhs` from the value of `expr` (a Result), or fails the test with
// the error's message and returns from it.
#define CPPDIAG_ASSERT_OK_AND_ASSIGN(lhs, expr) \
  CPPDIAG_ASSERT_OK_AND_ASSIGN_IMPL(CPPDIAG_CONCAT(cppdiag_assert_result_, __LINE__), lhs, expr)
#define CPPDIAG_ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                      \
  ASSERT_TRUE(tmp.ok()) << tmp.error().message();         \
  lhs = std::move(tmp).value()
