// What the dump integration tests share: running dump_test_target to its
// end, gdb and eu-stack on a core, the target's READY line, and the fixture
// (a fresh directory, and a tiny tmpfs for the full-disk cases).
#pragma once

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "diag/dump/cppdiag_note.h"
#include "support/scoped_temp_dir.h"
#include "support/subprocess.h"

namespace cppdiag::dump::integration_test {

// The built dump_test_target.
std::string Target();

struct ProcessRun {
  ::cppdiag::testing::Termination end;
  std::string out, err;
};

// Runs `argv` (with `env` added) to its end; a failure if it outlives `timeout`.
ProcessRun RunToEnd(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
                    std::chrono::seconds timeout = std::chrono::seconds(120));

// gdb -batch on `core` of the target (threads, backtraces, shared libraries).
std::string Gdb(const std::string& core);
// eu-stack on `core` of the target.
ProcessRun EuStack(const std::string& core);
// Threads listed by gdb's "info threads".
int GdbThreadCount(const std::string& gdb);
// The "threads=N" and "pid=N" the target printed on READY (-1 and a failure
// when absent).
int ReadyThreads(const std::string& out);
pid_t ReadyPid(const std::string& out);
// Whether the file at `path` holds `needle`, read in 1 MiB windows.
bool FileContains(const std::string& path, const std::string& needle);
// The names in `dir`, sorted.
std::vector<std::string> ListDir(const std::string& dir);
// gdb's backtrace of thread `thread` in `gdb` (its output), or "".
std::string Backtrace(const std::string& gdb, int thread);
// The cppdiag note of `core` (a failure unless there is exactly one).
CppdiagInfo ReadCppdiagNote(const std::string& core);

class DumpIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override { ::chmod(dir_.c_str(), 0755); }
  void TearDown() override {
    if (!mount_.empty()) ::umount2(mount_.c_str(), MNT_DETACH);
  }
  // A 1 MiB tmpfs (a full disk as soon as a dump starts); false if not root.
  bool MountTinyFilesystem(const std::string& at) {
    std::filesystem::create_directories(at);
    if (::mount("tmpfs", at.c_str(), "tmpfs", 0, "size=1m,mode=0755") != 0) return false;
    mount_ = at;
    return true;
  }

  ::cppdiag::testing::ScopedTempDir tmp_{"cppdiag-dump-test"};  // removed after TearDown's umount
  std::string dir_ = tmp_.path();
  std::string mount_;
};

}  // namespace cppdiag::dump::integration_test
