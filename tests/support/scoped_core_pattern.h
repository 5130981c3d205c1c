// Makes the kernel write cores as a plain file ("core") in the crashing
// process's working directory, and restores the system's setting when it
// goes. Needs root when the system's core_pattern is a pipe or a path (then
// tests that use it run SERIAL); ok() says whether it could, why_not() why not.
#pragma once

#include <string>

namespace cppdiag::testing {

class ScopedCorePattern {
 public:
  ScopedCorePattern();
  ~ScopedCorePattern();
  ScopedCorePattern(const ScopedCorePattern&) = delete;
  ScopedCorePattern& operator=(const ScopedCorePattern&) = delete;

  bool ok() const { return ok_; }
  const std::string& why_not() const { return why_not_; }

 private:
  std::string saved_;
  std::string why_not_;
  bool ok_ = false;
  bool changed_ = false;
};

}  // namespace cppdiag::testing
