// A fresh directory for one test, removed with everything in it when the
// object goes (after crashpad's ScopedTempDir):
//
//   ScopedTempDir dir;                       // /tmp/cppdiag-test-XXXXXX
//   WriteFile(dir.Join("core"), ...);
//   ScopedTempDir mine("cppdiag-dump", "/var/tmp");
//
// Set CPPDIAG_KEEP_TEST_OUTPUT to keep the directories of a run for a look.
#pragma once

#include <string>
#include <string_view>

namespace cppdiag::testing {

class ScopedTempDir {
 public:
  // Creates `base`/`prefix`-XXXXXX (mode 0700). Throws std::runtime_error when
  // it cannot (a test set-up that has no directory cannot go on).
  explicit ScopedTempDir(std::string_view prefix = "cppdiag-test", std::string_view base = "/tmp");
  ~ScopedTempDir();  // removes the directory and what is in it
  ScopedTempDir(ScopedTempDir&& other) noexcept;
  ScopedTempDir& operator=(ScopedTempDir&& other) noexcept;
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  // The directory, absolute, without a trailing slash; empty once moved from
  // or released.
  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Join(std::string_view name) const;
  // Leaves the directory on disk and returns its path; the object owns nothing.
  std::string Release();

 private:
  void Remove();
  std::string path_;
};

}  // namespace cppdiag::testing
