// Self-dumps on request, end to end: dump_test_target writes a dump of each
// type and gdb and eu-stack read it, as an engineer would; threads that
// block the signal, a non-dumpable process, a memory cgroup. Synchronisation
// is on the target's output and exit.
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

using ::cppdiag::testing::IsOk;

using cppdiag::dump_test::Marker;

using cppdiag::testing::BuiltBinary;
using cppdiag::testing::Subprocess;
using cppdiag::testing::SubprocessOptions;
using cppdiag::testing::Termination;
using std::chrono::seconds;
namespace fs = std::filesystem;

// --- dumps on request, one per type ---

class SelfDumpTypeTest : public DumpIntegrationTest,
                         public ::testing::WithParamInterface<const char*> {};

TEST_P(SelfDumpTypeTest, GdbAndEuStackReadItAndTheTypeSelectsMemory) {
  const std::string type = GetParam();
  const uint64_t seed = 4000 + ::getpid();
  const std::string core = dir_ + "/core." + type;
  ProcessRun r = RunToEnd({Target(), "dump", "--type", type, "--path", core, "--threads", "4",
                           "--heap-mb", "16", "--marker-seed", std::to_string(seed)});
  ASSERT_EQ(r.end.exit_code, 0) << r.end.ToString() << "\n" << r.out << r.err;
  EXPECT_NE(r.out.find("DUMP rc=0 path=" + core), std::string::npos) << r.out;
  const int threads = ReadyThreads(r.out);
  EXPECT_EQ(threads, 5);

  // One file, the final one, mode 0600.
  EXPECT_EQ(ListDir(dir_), std::vector<std::string>{"core." + type});
  struct stat st;
  ASSERT_EQ(::stat(core.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  std::string gdb = Gdb(core);
  EXPECT_EQ(GdbThreadCount(gdb), threads) << gdb;
  EXPECT_EQ(gdb.find("Program terminated with signal"), std::string::npos);  // no signal
  // Symbolized stacks for every thread: the dumping one, parked and spinning ones.
  EXPECT_NE(Backtrace(gdb, 1).find("RequestDumpFromMain"), std::string::npos) << gdb;
  EXPECT_NE(Backtrace(gdb, 1).find(" main ("), std::string::npos) << gdb;
  EXPECT_NE(gdb.find("ParkWorkerInRead"), std::string::npos) << gdb;
  EXPECT_NE(gdb.find("SpinWorker"), std::string::npos) << gdb;
  EXPECT_NE(gdb.find("WorkerThreadMain"), std::string::npos) << gdb;
  EXPECT_NE(gdb.find("__GI___libc_read"), std::string::npos) << gdb;  // libc symbolized
  // The module list was found: libc is listed with its load address.
  EXPECT_TRUE(
      std::regex_search(gdb, std::regex(R"(\n0x[0-9a-f]+\s+0x[0-9a-f]+\s+Yes.*libc\.so\.6)")))
      << gdb;

  ProcessRun eu = EuStack(core);
  EXPECT_EQ(eu.end.exit_code, 0) << eu.out << eu.err;
  EXPECT_NE(eu.out.find("RequestDumpFromMain"), std::string::npos) << eu.out << eu.err;
  EXPECT_NE(eu.out.find("ParkWorkerInRead"), std::string::npos) << eu.out;
  int tids = 0;
  for (size_t p = eu.out.find("TID "); p != std::string::npos; p = eu.out.find("TID ", p + 1)) {
    ++tids;
  }
  EXPECT_EQ(tids, threads);

  bool stores_heap = type == "full" || type == "heap";
  EXPECT_EQ(FileContains(core, Marker(seed)), stores_heap) << type;

  CppdiagInfo info = ReadCppdiagNote(core);
  EXPECT_STREQ(info.reason, "on-demand");
  EXPECT_EQ(info.pid, ReadyPid(r.out));
  EXPECT_EQ(info.signal, 0);
  EXPECT_EQ(info.threads, static_cast<uint32_t>(threads));
  EXPECT_EQ(info.threads_not_captured, 0u);
  EXPECT_EQ(info.dump_type, DumpTypeNumber(type == "full"   ? DumpType::kFull
                                           : type == "heap" ? DumpType::kHeap
                                           : type == "mini" ? DumpType::kMini
                                                            : DumpType::kTriage));
  EXPECT_GT(info.unix_time_sec, 1600000000);
}

INSTANTIATE_TEST_SUITE_P(DumpTypes, SelfDumpTypeTest,
                         ::testing::Values("full", "heap", "mini", "triage"));

TEST_F(DumpIntegrationTest, MiniIsAtLeastTwentyTimesSmallerThanFull) {
  const std::string full = dir_ + "/core.full", mini = dir_ + "/core.mini";
  ProcessRun r = RunToEnd({Target(), "dump", "--type", "full", "--path", full, "--second-type",
                           "mini", "--second-path", mini, "--threads", "4", "--heap-mb", "200"});
  ASSERT_EQ(r.end.exit_code, 0) << r.out << r.err;
  uint64_t full_size = fs::file_size(full), mini_size = fs::file_size(mini);
  EXPECT_GT(full_size, 200u << 20);
  EXPECT_GE(full_size, 20 * mini_size) << "full " << full_size << ", mini " << mini_size;
  std::string gdb = Gdb(mini);
  EXPECT_NE(gdb.find("RequestDumpFromMain"), std::string::npos) << gdb;
}

TEST_F(DumpIntegrationTest, AThreadThatBlocksTheSignalIsRecordedFromProc) {
  const std::string core = dir_ + "/core";
  ProcessRun r = RunToEnd({Target(), "dump", "--type", "mini", "--path", core, "--threads", "2",
                           "--blocked-threads", "1", "--heap-mb", "1"});
  ASSERT_EQ(r.end.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("not_captured=1"), std::string::npos) << r.out;
  std::string gdb = Gdb(core);
  EXPECT_EQ(GdbThreadCount(gdb), ReadyThreads(r.out)) << gdb;
  // Its SP and PC from /proc/<tid>/syscall unwind it out of libc's read()
  // into the caller (further needs rbp, which /proc does not give): with the
  // parked worker, two threads show ParkWorkerInRead.
  size_t parked = 0;
  for (size_t p = gdb.find("in (anonymous namespace)::ParkWorkerInRead"); p != std::string::npos;
       p = gdb.find("in (anonymous namespace)::ParkWorkerInRead", p + 1)) {
    ++parked;
  }
  EXPECT_EQ(parked, 2u) << gdb;
  EXPECT_EQ(ReadCppdiagNote(core).threads_not_captured, 1u);
}

TEST_F(DumpIntegrationTest, ANonDumpableProcessDumpsWithoutProcSelfMem) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the target as another user";
  // Not dumpable and not root: /proc/self/mem and pagemap are refused, so
  // memory comes through process_vm_readv and the plan works without page flags.
  const std::string out = dir_ + "/out";
  fs::create_directory(out);
  ::chown(out.c_str(), 65534, 65534);
  const uint64_t seed = 9000 + ::getpid();
  for (const char* type : {"heap", "mini"}) {
    const std::string core = out + "/core." + type;
    ProcessRun r = RunToEnd({Target(), "dump", "--type", type, "--path", core, "--run-as", "65534",
                             "--non-dumpable", "1", "--threads", "2", "--heap-mb", "4",
                             "--marker-seed", std::to_string(seed)});
    ASSERT_EQ(r.end.exit_code, 0) << r.out << r.err;
    std::string gdb = Gdb(core);
    EXPECT_EQ(GdbThreadCount(gdb), ReadyThreads(r.out)) << gdb;
    EXPECT_NE(gdb.find("RequestDumpFromMain"), std::string::npos) << gdb;
    EXPECT_NE(gdb.find("__GI___libc_read"), std::string::npos) << gdb;  // solibs found
    EXPECT_EQ(FileContains(core, Marker(seed)), std::string(type) == "heap");
  }
}

TEST_F(DumpIntegrationTest, AFullDumpInAMemoryCgroupKeepsItsPageCacheBounded) {
  // The page cache of the dump is charged to the process's cgroup. The writer
  // writes back and drops what it wrote every few MiB, so the cgroup's peak
  // grows by far less than the dump's size, and a process near its limit is
  // not pushed over it.
  cppdiag::testing::ScopedCgroup cg(512u << 20);
  if (!cg.ok()) GTEST_SKIP() << cg.why_not();
  if (cg.version() != 1) GTEST_SKIP() << "needs v1's resettable memory.max_usage_in_bytes";
  const std::string fifo = dir_ + "/go", core = dir_ + "/core";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  SubprocessOptions o;
  o.argv = {Target(),    "dump", "--type",    "full", "--path",    core,
            "--threads", "3",    "--heap-mb", "240",  "--go-fifo", fifo};
  o.cgroup_procs = cg.procs_file();
  Subprocess p(o);
  ASSERT_TRUE(p.WaitForOutput("READY", seconds(60))) << p.Stderr();
  ASSERT_THAT(WriteStringToFile(cg.dir() + "/memory.max_usage_in_bytes", "0"), IsOk());
  auto before = ReadFileToString(cg.dir() + "/memory.usage_in_bytes");
  ASSERT_THAT(before, IsOk());
  ASSERT_THAT(WriteStringToFile(fifo, "g"), IsOk());  // go
  auto end = p.Wait(seconds(120));
  ASSERT_TRUE(end.has_value());
  ASSERT_EQ(end->exit_code, 0) << end->ToString() << p.Stdout() << p.Stderr();
  auto peak = ReadFileToString(cg.dir() + "/memory.max_usage_in_bytes");
  ASSERT_THAT(peak, IsOk());
  uint64_t growth = std::stoull(*peak) - std::stoull(*before);
  uint64_t size = fs::file_size(core);
  EXPECT_GT(size, 240u << 20);
  EXPECT_LT(growth, 64u << 20) << "the dump (" << size << " bytes) grew the cgroup by " << growth;
  EXPECT_EQ(cg.oom_kills(), 0u);
}

}  // namespace
}  // namespace cppdiag::dump::integration_test
