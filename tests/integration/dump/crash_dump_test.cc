// Crash dumps end to end: the crash handler dumps, then the process dies of
// its own signal; two threads crashing at once, the program's own handler,
// an unwritable directory, a full filesystem.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "common/io.h"
#include "diag/dump/cppdiag_note.h"
#include "diag/dump/testing/core_file_reader.h"
#include "integration/dump/dump_integration_fixture.h"
#include "marker.h"
#include "support/scoped_cgroup.h"
#include "support/status_matchers.h"
#include "support/subprocess.h"

namespace cppdiag::dump::integration_test {
namespace {

using cppdiag::dump_test::Marker;

using cppdiag::testing::BuiltBinary;
using cppdiag::testing::Subprocess;
using cppdiag::testing::SubprocessOptions;
using cppdiag::testing::Termination;
using std::chrono::seconds;
namespace fs = std::filesystem;

// --- crash dumps ---

struct CrashCase {
  const char* action;
  int signal;
  const char* frame;        // a function in the crashing thread's backtrace
  const char* stderr_line;  // besides the dump lines
};

void PrintTo(const CrashCase& c, std::ostream* os) { *os << c.action; }

class CrashDumpTest : public DumpIntegrationTest,
                      public ::testing::WithParamInterface<CrashCase> {};

TEST_P(CrashDumpTest, DumpsThenDiesOfItsSignal) {
  const CrashCase c = GetParam();
  const uint64_t seed = 7000 + ::getpid();
  ProcessRun r = RunToEnd({Target(), c.action, "--type", "heap", "--threads", "3", "--heap-mb", "8",
                           "--marker-seed", std::to_string(seed)},
                          {{"CPPDIAG_DUMP_NAME", dir_ + "/core.%e.%p.%r"}});
  ASSERT_EQ(r.end.signal, c.signal) << r.end.ToString() << "\n" << r.err;
  pid_t pid = ReadyPid(r.out);
  const std::string core = dir_ + "/core.dump_test_target." + std::to_string(pid) + ".crash";
  const std::string sig = c.signal == SIGSEGV ? "SIGSEGV" : "SIGABRT";
  EXPECT_NE(
      r.err.find("cppdiag: writing heap dump to " + core + " (reason: crash, signal " + sig + ")"),
      std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("cppdiag: dump complete: " + core + " ("), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(c.stderr_line), std::string::npos) << r.err;
  EXPECT_EQ(ListDir(dir_), std::vector<std::string>{fs::path(core).filename()});
  struct stat st;
  ASSERT_EQ(::stat(core.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  std::string gdb = Gdb(core);
  EXPECT_NE(gdb.find("Program terminated with signal " + sig), std::string::npos) << gdb;
  EXPECT_EQ(GdbThreadCount(gdb), ReadyThreads(r.out)) << gdb;
  std::string crashing = Backtrace(gdb, 1);
  EXPECT_NE(crashing.find(c.frame), std::string::npos) << gdb;
  EXPECT_NE(gdb.find("ParkWorkerInRead"), std::string::npos) << gdb;
  EXPECT_TRUE(FileContains(core, Marker(seed)));
  ProcessRun eu = EuStack(core);
  EXPECT_EQ(eu.end.exit_code, 0) << eu.err;
  EXPECT_NE(eu.out.find(c.frame), std::string::npos) << eu.out << eu.err;

  CppdiagInfo info = ReadCppdiagNote(core);
  EXPECT_STREQ(info.reason, "crash");
  EXPECT_EQ(info.signal, c.signal);
  EXPECT_EQ(info.pid, pid);
}

INSTANTIATE_TEST_SUITE_P(
    CrashKinds, CrashDumpTest,
    ::testing::Values(CrashCase{"segv", SIGSEGV, "CrashWithBadWrite", "cppdiag:"},
                      CrashCase{"segv-thread", SIGSEGV, "WorkerThreadMain", "cppdiag:"},
                      CrashCase{"abort", SIGABRT, "CallAbort", "cppdiag:"},
                      CrashCase{"throw", SIGABRT, "ThrowUncaught",
                                "cppdiag: terminate called after throwing an instance of "
                                "'std::runtime_error': what(): cppdiag test: nobody catches this"},
                      CrashCase{"bad_alloc", SIGABRT, "AllocateTooMuch",
                                "cppdiag: terminate called after throwing an instance of "
                                "'std::bad_alloc'"}),
    [](const ::testing::TestParamInfo<CrashCase>& param) {
      std::string name = param.param.action;
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

TEST_F(DumpIntegrationTest, TwoThreadsCrashingTogetherGiveOneDump) {
  ProcessRun r =
      RunToEnd({Target(), "segv-two", "--type", "mini", "--threads", "4", "--heap-mb", "1"},
               {{"CPPDIAG_DUMP_NAME", dir_ + "/core.%p"}});
  ASSERT_EQ(r.end.signal, SIGSEGV) << r.end.ToString() << r.err;
  EXPECT_EQ(ListDir(dir_).size(), 1u);
  size_t writing = 0;
  for (size_t p = r.err.find("cppdiag: writing"); p != std::string::npos;
       p = r.err.find("cppdiag: writing", p + 1)) {
    ++writing;
  }
  EXPECT_EQ(writing, 1u) << r.err;
  std::string gdb = Gdb(dir_ + "/core." + std::to_string(ReadyPid(r.out)));
  EXPECT_NE(Backtrace(gdb, 1).find("CrashWithBadWrite"), std::string::npos) << gdb;
}

TEST_F(DumpIntegrationTest, TheProgramsOwnCrashHandlerRunsAfterTheDump) {
  // The program installed its handler first: cppdiag dumps, then calls it
  // (it prints and exits 42) instead of killing the process.
  ProcessRun r = RunToEnd({Target(), "segv", "--own-handler", "1", "--type", "heap", "--threads",
                           "2", "--heap-mb", "1"},
                          {{"CPPDIAG_DUMP_NAME", dir_ + "/core.%p"}});
  ASSERT_EQ(r.end.exit_code, 42) << r.end.ToString() << "\n" << r.out << r.err;
  EXPECT_NE(r.out.find("OWN-HANDLER sig=" + std::to_string(SIGSEGV) + "\n"), std::string::npos)
      << r.out;
  const std::string core = dir_ + "/core." + std::to_string(ReadyPid(r.out));
  EXPECT_NE(r.err.find("cppdiag: dump complete: " + core), std::string::npos) << r.err;
  std::string gdb = Gdb(core);
  EXPECT_NE(gdb.find("Program terminated with signal SIGSEGV"), std::string::npos) << gdb;
  EXPECT_NE(Backtrace(gdb, 1).find("CrashWithBadWrite"), std::string::npos) << gdb;
}

TEST_F(DumpIntegrationTest, UnwritableDirectoryStillDiesOfItsSignalAndSaysWhy) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the target as another user";
  // As a non-root user in a directory owned by root (root would ignore the mode).
  const std::string locked = dir_ + "/locked";
  fs::create_directory(locked);
  ::chmod(locked.c_str(), 0755);
  ProcessRun r =
      RunToEnd({Target(), "segv", "--run-as", "65534", "--threads", "2", "--heap-mb", "1"},
               {{"CPPDIAG_DUMP_NAME", locked + "/core.%p"}});
  ASSERT_EQ(r.end.signal, SIGSEGV) << r.end.ToString() << r.err;
  EXPECT_NE(r.err.find("cppdiag: no dump written: open " + locked + "/core."), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("EACCES"), std::string::npos) << r.err;
  EXPECT_TRUE(ListDir(locked).empty());
}

TEST_F(DumpIntegrationTest, FullFilesystemLeavesNoPartialFileAndTheCrashGoesOn) {
  const std::string small = dir_ + "/small";
  if (!MountTinyFilesystem(small)) GTEST_SKIP() << "cannot mount tmpfs (not root?)";
  ProcessRun r = RunToEnd({Target(), "segv", "--type", "full", "--threads", "2", "--heap-mb", "16"},
                          {{"CPPDIAG_DUMP_NAME", small + "/core.%p"}});
  ASSERT_EQ(r.end.signal, SIGSEGV) << r.end.ToString() << r.err;
  EXPECT_NE(r.err.find("cppdiag: no dump written: pwrite " + small + "/core."), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("ENOSPC"), std::string::npos) << r.err;
  EXPECT_TRUE(ListDir(small).empty());
}

TEST_F(DumpIntegrationTest, FullFilesystemOnRequestFailsCleanlyAndTheProcessGoesOn) {
  const std::string small = dir_ + "/small";
  if (!MountTinyFilesystem(small)) GTEST_SKIP() << "cannot mount tmpfs (not root?)";
  ProcessRun r = RunToEnd({Target(), "dump", "--type", "full", "--path", small + "/core",
                           "--threads", "3", "--heap-mb", "16"});
  ASSERT_TRUE(r.end.exit_code.has_value()) << r.end.ToString() << r.err;
  EXPECT_EQ(*r.end.exit_code, 1);  // the dump failed, the process did not
  EXPECT_NE(r.out.find("DUMP rc=" + std::to_string(ENOSPC)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("failed=pwrite"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("EXIT rc=1"), std::string::npos) << r.out;  // threads released, joined
  EXPECT_TRUE(ListDir(small).empty());
}

}  // namespace
}  // namespace cppdiag::dump::integration_test
