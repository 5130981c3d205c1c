// Real cores for the reader's tests, written by the project's own ELF core
// writer from a FakeProcessSnapshot (known contents, in memory, fast), and a
// temporary directory to put files in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "diag/dump/cppdiag_note.h"
#include "diag/dump/process_snapshot.h"

namespace cppdiag::cli::analyze::testing {

// The core WriteElfCore makes of `snapshot`; fails the test on error.
std::vector<uint8_t> WriteFakeCore(const dump::ProcessSnapshot& snapshot, DumpType type,
                                   const dump::CppdiagInfo* info = nullptr);

// A fresh directory under /tmp, removed with everything in it.
class ScopedTempDir {
 public:
  ScopedTempDir();
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `bytes` to path()/name and returns its path.
  std::string Write(const std::string& name, const std::vector<uint8_t>& bytes) const;

 private:
  std::string path_;
};

}  // namespace cppdiag::cli::analyze::testing
