// Real cores for the reader's tests, written by the project's own ELF core
// writer from a FakeProcessSnapshot (known contents, in memory, fast), and a
// temporary directory to put files in.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "diag/dump/cppdiag_note.h"
#include "diag/dump/process_snapshot.h"
#include "support/scoped_temp_dir.h"

namespace cppdiag::cli::analyze::testing {

// The core WriteElfCore makes of `snapshot`; fails the test on error.
std::vector<uint8_t> WriteFakeCore(const dump::ProcessSnapshot& snapshot, DumpType type,
                                   const dump::CppdiagInfo* info = nullptr);

// gdb's `gcore` of a forked child of this process with `threads` threads
// besides its main one, written to `path`; the child has written
// "gdb-child-<pid>" at ChildMarkerAddress() (the same address in parent and
// child). `tids` are the child's /proc/<pid>/task while gdb ran, ascending.
struct GdbCore {
  pid_t pid = 0;
  std::vector<pid_t> tids;
  std::string gdb_output;
};
GdbCore GcoreOfThreadedChild(const std::string& path, int threads);
uint64_t ChildMarkerAddress();

// A fresh directory under /tmp, removed with everything in it (tests/support).
using ScopedTempDir = ::cppdiag::testing::ScopedTempDir;
// Writes `bytes` to dir/name and returns its path.
std::string WriteBytes(const ScopedTempDir& dir, const std::string& name,
                       const std::vector<uint8_t>& bytes);

}  // namespace cppdiag::cli::analyze::testing
