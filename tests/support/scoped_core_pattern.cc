#include "support/scoped_core_pattern.h"

#include <unistd.h>

#include <cstdio>

#include "common/io.h"

namespace cppdiag::testing {

constexpr const char* kCorePattern = "/proc/sys/kernel/core_pattern";

ScopedCorePattern::ScopedCorePattern() {
  auto saved = ReadFileToString(kCorePattern);
  if (!saved.ok()) {
    why_not_ = "cannot read " + std::string(kCorePattern);
    return;
  }
  saved_ = *saved;
  while (!saved_.empty() && saved_.back() == '\n') saved_.pop_back();
  if (!saved_.empty() && saved_[0] != '|' && saved_.find('/') == std::string::npos) {
    ok_ = true;  // already a file name in the working directory
    return;
  }
  if (::geteuid() != 0) {
    why_not_ = "core_pattern is '" + saved_ + "' and changing it needs root";
    return;
  }
  if (!WriteStringToFile(kCorePattern, "core").ok()) {
    why_not_ = "cannot set core_pattern (a container without its own sysctls?)";
    return;
  }
  changed_ = ok_ = true;
}

ScopedCorePattern::~ScopedCorePattern() {
  if (changed_ && !WriteStringToFile(kCorePattern, saved_).ok()) {
    std::fprintf(stderr, "could not restore core_pattern '%s'\n", saved_.c_str());
  }
}

}  // namespace cppdiag::testing
