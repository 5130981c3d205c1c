// Error and Result<T>: what failed, with errno and the failing call, without
// exceptions crossing library boundaries (after abseil's Status/StatusOr).
//
//   Result<ScopedFd> fd = OpenFile("/proc/self/stat", O_RDONLY);
//   if (!fd) return fd.error();          // propagate
//   CPPDIAG_ASSIGN_OR_RETURN(auto text, ReadFileToString(path));
//
// Not async-signal-safe (Error holds std::string): signal handlers use raw_log.h.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cppdiag {

// What strerror says of `err` ("No such file or directory"), thread-safe.
std::string ErrnoDescription(int err);

class Error {
 public:
  // `code` is an errno value; `call` names the failing call ("open"); `detail`
  // says on what ("/proc/12/maps").
  Error(int code, std::string call, std::string detail = {})
      : code_(code), call_(std::move(call)), detail_(std::move(detail)) {}

  // Captures errno as it is now.
  static Error FromErrno(std::string call, std::string detail = {}) {
    return Error(errno, std::move(call), std::move(detail));
  }
  // A failure that is not a syscall's: bad input, unexpected content.
  static Error Invalid(std::string message) { return Error(EINVAL, {}, std::move(message)); }

  int code() const { return code_; }
  const std::string& call() const { return call_; }
  const std::string& detail() const { return detail_; }

  // One line for a user: "open /x: No such file or directory", or the message
  // of an Invalid error.
  std::string message() const;

 private:
  int code_;
  std::string call_;
  std::string detail_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_{0, {}};
  bool ok_ = true;
};

using Status = Result<void>;

inline Status OkStatus() { return {}; }

}  // namespace cppdiag

#define CPPDIAG_CONCAT_INNER(a, b) a##b
#define CPPDIAG_CONCAT(a, b) CPPDIAG_CONCAT_INNER(a, b)

// Returns the error of `expr` (a Result) from the enclosing function.
#define CPPDIAG_RETURN_IF_ERROR(expr)                     \
  do {                                                    \
    auto cppdiag_status_ = (expr);                        \
    if (!cppdiag_status_) return cppdiag_status_.error(); \
  } while (0)

// Declares `lhs` from the value of `expr`, or returns its error.
// NOLINTBEGIN(bugprone-macro-parentheses): `lhs` is a declaration and `tmp` a
// name: neither can be parenthesized.
#define CPPDIAG_ASSIGN_OR_RETURN(lhs, expr) \
  CPPDIAG_ASSIGN_OR_RETURN_IMPL(CPPDIAG_CONCAT(cppdiag_result_, __LINE__), lhs, expr)
#define CPPDIAG_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp) return tmp.error();                       \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
