// End-to-end tests of self-dumps and crash dumps: dump_test_target writes a
// dump (on request, or from the crash handler) and gdb and eu-stack read it,
// as an engineer would. Synchronisation is on the target's output and exit.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "common/io.h"
#include "diag/dump/cppdiag_note.h"
#include "diag/dump/testing/core_file_reader.h"
#include "marker.h"
#include "support/scoped_cgroup.h"
#include "support/subprocess.h"

namespace cppdiag::dump {
namespace {

using cppdiag::dump_test::Marker;

using cppdiag::testing::BuiltBinary;
using cppdiag::testing::Subprocess;
using cppdiag::testing::SubprocessOptions;
using cppdiag::testing::Termination;
using std::chrono::seconds;
namespace fs = std::filesystem;

std::string Target() { return BuiltBinary("dump_test_target"); }

struct ProcessRun {
  Termination end;
  std::string out, err;
};

ProcessRun RunToEnd(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
                    seconds timeout = seconds(120)) {
  Subprocess p(SubprocessOptions{std::move(argv), std::move(env)});
  auto t = p.Wait(timeout);
  EXPECT_TRUE(t.has_value()) << "timed out";
  ProcessRun r;
  if (t) r.end = *t;
  r.out = p.Stdout();
  r.err = p.Stderr();
  return r;
}

std::string Gdb(const std::string& core) {
  return cppdiag::testing::GdbBatch(Target(), core, {"info sharedlibrary"});
}

ProcessRun EuStack(const std::string& core) {
  return RunToEnd({"/usr/bin/eu-stack", "--core=" + core, "--executable=" + Target()});
}

int GdbThreadCount(const std::string& gdb) {
  static const std::regex kRow(R"(^\*?\s+\d+\s+(Thread 0x[0-9a-f]+ )?\(?LWP \d+)");
  int n = 0;
  std::istringstream in(gdb);
  for (std::string line; std::getline(in, line);) n += std::regex_search(line, kRow);
  return n;
}

// The "threads=N" the target printed on READY.
int ReadyThreads(const std::string& out) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(out, m, std::regex(R"(READY pid=\d+ threads=(\d+))"))) << out;
  return m.empty() ? -1 : std::stoi(m[1]);
}

pid_t ReadyPid(const std::string& out) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(out, m, std::regex(R"(READY pid=(\d+))"))) << out;
  return m.empty() ? -1 : std::stoi(m[1]);
}

bool FileContains(const std::string& path, const std::string& needle) {
  std::ifstream in(path, std::ios::binary);
  std::string carry, chunk(1 << 20, '\0');
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    std::string window = carry + chunk.substr(0, static_cast<size_t>(in.gcount()));
    if (window.find(needle) != std::string::npos) return true;
    carry = window.size() >= needle.size() ? window.substr(window.size() - needle.size()) : window;
  }
  return false;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

std::string Backtrace(const std::string& gdb, int thread) {
  size_t a = gdb.find("\nThread " + std::to_string(thread) + " ");
  if (a == std::string::npos) return "";
  size_t b = gdb.find("\nThread ", a + 1);
  size_t c = gdb.find("\nFrom ", a + 1);  // info sharedlibrary
  return gdb.substr(a, std::min(b, c) - a);
}

CppdiagInfo ReadCppdiagNote(const std::string& core) {
  CppdiagInfo info;
  auto parsed = testing::ParseCoreFile(core);
  EXPECT_TRUE(parsed.ok()) << parsed.error().message();
  if (!parsed.ok()) return info;
  auto notes = parsed->NotesOfType(kCppdiagNoteName, kNtCppdiagInfo);
  EXPECT_EQ(notes.size(), 1u);
  if (notes.size() == 1) {
    EXPECT_TRUE(DecodeCppdiagInfo(notes[0]->desc, &info));
  }
  return info;
}

class DumpIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cppdiag-dump-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);
  }
  void TearDown() override {
    if (!mount_.empty()) ::umount2(mount_.c_str(), MNT_DETACH);
    std::error_code ec;
    if (std::getenv("CPPDIAG_KEEP_TEST_OUTPUT") == nullptr) fs::remove_all(dir_, ec);
  }
  // A 1 MiB tmpfs (a full disk as soon as a dump starts); false if not root.
  bool MountTinyFilesystem(const std::string& at) {
    fs::create_directories(at);
    if (::mount("tmpfs", at.c_str(), "tmpfs", 0, "size=1m,mode=0755") != 0) return false;
    mount_ = at;
    return true;
  }

  std::string dir_;
  std::string mount_;
};

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
  ASSERT_TRUE(WriteStringToFile(cg.dir() + "/memory.max_usage_in_bytes", "0").ok());
  auto before = ReadFileToString(cg.dir() + "/memory.usage_in_bytes");
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(WriteStringToFile(fifo, "g").ok());  // go
  auto end = p.Wait(seconds(120));
  ASSERT_TRUE(end.has_value());
  ASSERT_EQ(end->exit_code, 0) << end->ToString() << p.Stdout() << p.Stderr();
  auto peak = ReadFileToString(cg.dir() + "/memory.max_usage_in_bytes");
  ASSERT_TRUE(peak.ok());
  uint64_t growth = std::stoull(*peak) - std::stoull(*before);
  uint64_t size = fs::file_size(core);
  EXPECT_GT(size, 240u << 20);
  EXPECT_LT(growth, 64u << 20) << "the dump (" << size << " bytes) grew the cgroup by " << growth;
  EXPECT_EQ(cg.oom_kills(), 0u);
}

// --- what a dump must leave out ---

// MADV_DONTDUMP memory (keys, tokens, buffers the program marked) is in no
// dump of any type or mode, as in the kernel's core; the heap marker beside
// it still is where the type stores the heap.
struct DontDumpCase {
  const char* type;
  const char* mode;
};

void PrintTo(const DontDumpCase& c, std::ostream* os) { *os << c.type << "/" << c.mode; }

class DontDumpTest : public DumpIntegrationTest,
                     public ::testing::WithParamInterface<DontDumpCase> {};

TEST_P(DontDumpTest, MemoryMarkedDontDumpIsNotInTheDump) {
  const DontDumpCase c = GetParam();
  const uint64_t control = 11000 + ::getpid(), secret = 12000 + ::getpid();
  const std::string core = dir_ + "/core";
  ProcessRun r =
      RunToEnd({Target(), "dump", "--type", c.type, "--mode", c.mode, "--path", core, "--threads",
                "2", "--heap-mb", "2", "--marker-seed", std::to_string(control), "--secret-seed",
                std::to_string(secret), "--print-dontdump", "1"});
  ASSERT_EQ(r.end.exit_code, 0) << r.end.ToString() << "\n" << r.out << r.err;
  EXPECT_FALSE(FileContains(core, Marker(secret))) << c.type << " dump holds MADV_DONTDUMP memory";
  bool stores_heap = std::string(c.type) == "full" || std::string(c.type) == "heap";
  EXPECT_EQ(FileContains(core, Marker(control)), stores_heap) << c.type;

  // No data at all for any mapping smaps showed as dd: the secret's, [vvar],
  // and the dumper's own buffers.
  static const std::regex kDontDump(R"(DONTDUMP ([0-9a-f]+)-([0-9a-f]+))");
  std::vector<std::pair<uint64_t, uint64_t>> dd;
  for (std::sregex_iterator it(r.out.begin(), r.out.end(), kDontDump), end; it != end; ++it) {
    dd.emplace_back(std::stoull((*it)[1], nullptr, 16), std::stoull((*it)[2], nullptr, 16));
  }
  EXPECT_GE(dd.size(), 4u) << r.out;  // secret, I/O buffers, thread capture, fork report, [vvar]
  auto parsed = testing::ParseCoreFile(core);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  for (const GElf_Phdr& ph : parsed->Loads()) {
    if (ph.p_filesz == 0) continue;
    for (auto [start, end] : dd) {
      EXPECT_FALSE(ph.p_vaddr < end && start < ph.p_vaddr + ph.p_filesz)
          << std::hex << "data at 0x" << ph.p_vaddr << "+0x" << ph.p_filesz << " in a dd mapping 0x"
          << start << "-0x" << end;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    TypesAndModes, DontDumpTest,
    ::testing::Values(DontDumpCase{"full", "suspend"}, DontDumpCase{"heap", "suspend"},
                      DontDumpCase{"mini", "suspend"}, DontDumpCase{"triage", "suspend"},
                      DontDumpCase{"full", "fork"}, DontDumpCase{"heap", "fork"}),
    [](const ::testing::TestParamInfo<DontDumpCase>& param) {
      return std::string(param.param.type) + "_" + param.param.mode;
    });

TEST_F(DumpIntegrationTest, ACrashDumpLeavesOutDontDumpMemory) {
  const uint64_t control = 13000 + ::getpid(), secret = 14000 + ::getpid();
  ProcessRun r =
      RunToEnd({Target(), "segv", "--type", "heap", "--threads", "2", "--heap-mb", "2",
                "--marker-seed", std::to_string(control), "--secret-seed", std::to_string(secret)},
               {{"CPPDIAG_DUMP_NAME", dir_ + "/core.%p"}});
  ASSERT_EQ(r.end.signal, SIGSEGV) << r.end.ToString() << "\n" << r.err;
  const std::string core = dir_ + "/core." + std::to_string(ReadyPid(r.out));
  EXPECT_TRUE(FileContains(core, Marker(control)));
  EXPECT_FALSE(FileContains(core, Marker(secret)));
}

// A heap dump stores what the kernel's core would under the process's
// /proc/<pid>/coredump_filter: bit 1 anonymous shared memory, bit 2
// file-backed private mappings (0x33 by default: bit 1 on, bit 2 off).
// A full dump ignores the filter.
struct FilterCase {
  const char* type;
  const char* filter;  // "" leaves the default
  bool anon_shared;    // expected in the dump
  bool file_private;
};

void PrintTo(const FilterCase& c, std::ostream* os) { *os << c.type << " " << c.filter; }

class CoredumpFilterTest : public DumpIntegrationTest,
                           public ::testing::WithParamInterface<FilterCase> {};

TEST_P(CoredumpFilterTest, TheDumpFollowsTheFilter) {
  const FilterCase c = GetParam();
  const uint64_t shared = 15000 + ::getpid(), file = 16000 + ::getpid();
  const std::string mapped = dir_ + "/mapped", core = dir_ + "/core";
  std::string page = Marker(file);
  page.resize(4096, 'f');
  ASSERT_TRUE(WriteStringToFile(mapped, page).ok());
  std::vector<std::string> argv = {Target(),     "dump", "--type",        c.type,
                                   "--path",     core,   "--threads",     "1",
                                   "--heap-mb",  "1",    "--shared-seed", std::to_string(shared),
                                   "--map-file", mapped};
  if (*c.filter != '\0') argv.insert(argv.end(), {"--coredump-filter", c.filter});
  ProcessRun r = RunToEnd(argv);
  ASSERT_EQ(r.end.exit_code, 0) << r.end.ToString() << "\n" << r.out << r.err;
  EXPECT_EQ(FileContains(core, Marker(shared)), c.anon_shared) << "anonymous shared memory";
  EXPECT_EQ(FileContains(core, Marker(file)), c.file_private) << "file-backed private mapping";
}

INSTANTIATE_TEST_SUITE_P(Filters, CoredumpFilterTest,
                         ::testing::Values(FilterCase{"heap", "", true, false},
                                           FilterCase{"heap", "0x31", false, false},
                                           FilterCase{"heap", "0x37", true, true},
                                           FilterCase{"full", "0x31", true, true}),
                         [](const ::testing::TestParamInfo<FilterCase>& param) {
                           std::string f = *param.param.filter ? param.param.filter : "default";
                           return std::string(param.param.type) + "_" + f;
                         });

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
}  // namespace cppdiag::dump
