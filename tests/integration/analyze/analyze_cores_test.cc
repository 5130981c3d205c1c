// dump analyze on real cores of dump_test_target: cppdiag's dumps of every
// type, the kernel's core of a crash, gdb's gcore. Threads and backtraces
// must agree with eu-stack (libdwfl's own unwinder, frame by frame) and gdb
// (the threads) on the same file; bad input fails with one line.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "analyze_support.h"
#include "support/scoped_core_pattern.h"
#include "support/subprocess.h"

namespace cppdiag::analyze_test {
namespace {

namespace fs = std::filesystem;
using cppdiag::testing::Subprocess;
using cppdiag::testing::SubprocessOptions;
using nlohmann::json;

// Whether any frame of thread `t` (bt JSON) has a function named like `name`.
bool HasFunction(const json& thread, const std::string& name) {
  for (const json& f : thread["frames"]) {
    for (const json& fn : f["functions"]) {
      if (fn["function"].get<std::string>().find(name) != std::string::npos) return true;
    }
  }
  return false;
}

// threads and bt all of `core` against eu-stack's and gdb's views.
void ExpectAgreesWithEuStackAndGdb(const std::string& core, size_t expected_threads) {
  SCOPED_TRACE(core);
  AnalyzeRun run = AnalyzeJson(core, {"threads", "bt all"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.outputs.size(), 2u) << run.out;
  const json& threads = run.outputs[0];
  const json& bt = run.outputs[1];
  ASSERT_EQ(threads.size(), expected_threads) << threads.dump(2);
  ASSERT_EQ(bt.size(), expected_threads);

  std::vector<pid_t> ours;
  for (const json& t : threads) ours.push_back(t["tid"].get<pid_t>());
  std::vector<pid_t> gdb = GdbThreads(core, Target());
  EXPECT_EQ(std::set<pid_t>(ours.begin(), ours.end()), std::set<pid_t>(gdb.begin(), gdb.end()));

  std::vector<EuThread> eu = EuStack(core, Target());
  ASSERT_EQ(eu.size(), expected_threads);
  for (const EuThread& e : eu) {
    SCOPED_TRACE("thread " + std::to_string(e.tid));
    auto it = std::find_if(bt.begin(), bt.end(), [&](const json& t) { return t["tid"] == e.tid; });
    ASSERT_NE(it, bt.end());
    const json& frames = (*it)["frames"];
    ASSERT_EQ(frames.size(), e.frames.size()) << it->dump(2);
    for (size_t i = 0; i < e.frames.size(); ++i) {
      EXPECT_EQ(frames[i]["pc"].get<uint64_t>(), e.frames[i].pc) << "frame " << i;
      if (e.frames[i].name.empty()) continue;
      // eu-stack names the function the code belongs to (the symbol table's),
      // which is the last of ours (after those inlined there).
      ASSERT_FALSE(frames[i]["functions"].empty()) << "frame " << i << ": " << e.frames[i].name;
      EXPECT_EQ(frames[i]["functions"].back()["function"].get<std::string>(), e.frames[i].name)
          << "frame " << i;
    }
    // The top frame `threads` shows is bt's first.
    auto top = std::find_if(threads.begin(), threads.end(),
                            [&](const json& t) { return t["tid"] == e.tid; });
    EXPECT_EQ((*top)["top_frame"]["pc"], frames[0]["pc"]);
  }
}

class OurDumpTest : public ::testing::TestWithParam<const char*> {};

TEST_P(OurDumpTest, ThreadsAndBacktracesAgreeWithEuStackAndGdb) {
  TempDir dir;
  const std::string core = dir.path() + "/core." + GetParam();
  pid_t pid = WriteOurDump(GetParam(), core, 3);
  ASSERT_GT(pid, 0);
  ExpectAgreesWithEuStackAndGdb(core, 4);

  AnalyzeRun run = AnalyzeJson(core, {"info", "bt all", "modules"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.outputs.size(), 3u);
  const json& info = run.outputs[0];
  EXPECT_EQ(info["pid"], pid);
  EXPECT_EQ(info["threads"], 4);
  EXPECT_EQ(info["cppdiag"]["dump_type"], GetParam());
  EXPECT_EQ(info["cppdiag"]["reason"], "on-demand");
  EXPECT_EQ(info["executable"], Target());
  // The dumping thread first, in the function that asked for the dump; the
  // workers parked in read (the first one spins).
  const json& bt = run.outputs[1];
  EXPECT_TRUE(HasFunction(bt[0], "RequestDumpFromMain")) << bt[0].dump(2);
  int parked = 0;
  for (const json& t : bt) parked += HasFunction(t, "ParkWorkerInRead");
  EXPECT_EQ(parked, 2);
  bool exe_found = false;
  for (const json& m : run.outputs[2]) {
    if (m["executable"] == true) {
      exe_found = true;
      EXPECT_EQ(m["file"], Target());
      EXPECT_TRUE(m["symbols"].get<bool>());
      EXPECT_TRUE(m["debug_info"].get<bool>());
      EXPECT_EQ(m["build_id"].get<std::string>().size(), 40u);
    }
  }
  EXPECT_TRUE(exe_found) << run.outputs[2].dump(2);
}

INSTANTIATE_TEST_SUITE_P(EveryType, OurDumpTest,
                         ::testing::Values("full", "heap", "mini", "triage"));

TEST(AnalyzeCoresTest, TheKernelsCoreOfACrashAndOursAgree) {
  cppdiag::testing::ScopedCorePattern pattern;
  if (!pattern.ok()) GTEST_SKIP() << pattern.why_not();
  TempDir dir;
  SubprocessOptions o;
  o.argv = {Target(), "segv", "--type", "full", "--threads", "3", "--kernel-core", "1"};
  o.env = {{"CPPDIAG_DUMP_NAME", dir.path() + "/cppdiag.%p"}};
  o.cwd = dir.path();
  Subprocess p(o);
  auto end = p.Wait(std::chrono::seconds(120));
  ASSERT_TRUE(end.has_value());
  ASSERT_EQ(end->signal, SIGSEGV) << end->ToString() << p.Stderr();
  ASSERT_TRUE(end->core_dumped) << "the kernel wrote no core";
  std::string ours, kernel;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    (e.path().filename().string().rfind("cppdiag.", 0) == 0 ? ours : kernel) = e.path();
  }
  ASSERT_FALSE(ours.empty());
  ASSERT_FALSE(kernel.empty());
  for (const std::string& core : {kernel, ours}) {
    ExpectAgreesWithEuStackAndGdb(core, 4);
    AnalyzeRun run = AnalyzeJson(core, {"info", "bt"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const json& info = run.outputs[0];
    EXPECT_EQ(info["signal"]["name"], "SIGSEGV");
    EXPECT_EQ(info["signal"]["fault_address"], 16);  // g_bad_address
    EXPECT_EQ(info.contains("cppdiag"), core == ours);
    ASSERT_EQ(run.outputs[1].size(), 1u);
    EXPECT_TRUE(HasFunction(run.outputs[1][0], "CrashWithBadWrite")) << run.outputs[1].dump(2);
    EXPECT_EQ(run.outputs[1][0]["signal"], SIGSEGV);
  }
}

TEST(AnalyzeCoresTest, GdbsGcoreAgrees) {
  TempDir dir;
  const std::string fifo = dir.path() + "/go", core = dir.path() + "/gcore";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Subprocess p(SubprocessOptions{.argv = {Target(), "segv", "--threads", "3", "--go-fifo", fifo}});
  ASSERT_TRUE(p.WaitForOutput("READY", std::chrono::seconds(60))) << p.Stderr();
  std::string gdb = cppdiag::testing::RunToCompletion(
      {"/usr/bin/gdb", "-batch", "-nx", "-p", std::to_string(p.pid()), "-ex", "gcore " + core});
  ASSERT_TRUE(fs::exists(core)) << gdb;
  ExpectAgreesWithEuStackAndGdb(core, 4);
  AnalyzeRun run = AnalyzeJson(core, {"info", "bt"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.outputs[0]["pid"], p.pid());
  EXPECT_FALSE(run.outputs[0].contains("cppdiag"));
  // The main thread waits for the go in Run (opening the FIFO).
  EXPECT_TRUE(HasFunction(run.outputs[1][0], "Run")) << run.outputs[1].dump(2);
}

// One line on stderr, non-zero exit, and `needle` in it.
void ExpectOneLineError(const std::vector<std::string>& args, const std::string& needle) {
  cppdiag::testing::CliRun r = cppdiag::testing::Cppdiag(args);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.exit_code, -1) << "crashed or hung: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(r.err.rfind("cppdiag: ", 0), 0u) << r.err;
}

TEST(AnalyzeCoresTest, BadInputFailsWithOneLine) {
  TempDir dir;
  const std::string core = dir.path() + "/core";
  ASSERT_GT(WriteOurDump("mini", core, 1), 0);
  ExpectOneLineError({"dump", "analyze", dir.path() + "/missing", "-c", "info"},
                     "No such file or directory");
  const std::string text = dir.path() + "/text";
  std::ofstream(text) << "hello\n";
  ExpectOneLineError({"dump", "analyze", text, "-c", "info"}, "not an ELF file");
  ExpectOneLineError({"dump", "analyze", Target(), "-c", "info"}, "not a core");
  ExpectOneLineError({"dump", "analyze", dir.path(), "-c", "info"}, "not a regular file");
  const std::string cut = dir.path() + "/cut";
  fs::copy_file(core, cut);
  fs::resize_file(cut, fs::file_size(core) / 2);
  ExpectOneLineError({"dump", "analyze", cut, "-c", "threads"}, "truncated");
  ExpectOneLineError({"dump", "analyze", core, "-c", "frob"}, "unknown command 'frob'");
  ExpectOneLineError({"dump", "analyze", core, "-c", "bt 999999999"}, "no thread 999999999");
  ExpectOneLineError({"dump", "analyze", core, "-c", "x 0x10 16"}, "not in the dump");
  ExpectOneLineError({"dump", "analyze", core, "-c", "x nowhere"}, "is not an address");
  ExpectOneLineError({"dump", "analyze", core, "-c", "heapstat"}, "no live-heap table");
  // A batch stops at the first failure: info's output, then the error.
  cppdiag::testing::CliRun r = cppdiag::testing::Cppdiag(
      {"dump", "analyze", core, "-c", "info", "-c", "frob", "-c", "maps"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("dump type:"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("START"), std::string::npos) << r.out;
}

TEST(AnalyzeCoresTest, MemoryAndSymbolsReadTheCore) {
  TempDir dir;
  const std::string core = dir.path() + "/core";
  ASSERT_GT(WriteOurDump("full", core, 1), 0);
  AnalyzeRun run = AnalyzeJson(core, {"modules"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  uint64_t exe_start = 0;
  for (const json& m : run.outputs[0]) {
    if (m["executable"] == true) exe_start = m["start"].get<uint64_t>();
  }
  ASSERT_NE(exe_start, 0u);
  char addr[32];
  std::snprintf(addr, sizeof addr, "%#llx", static_cast<unsigned long long>(exe_start));
  run = AnalyzeJson(core, {std::string("x ") + addr + " 4", "bt"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.outputs[0]["hex"], "7f454c46");  // the executable's ELF header, from the core
  uint64_t pc = run.outputs[1][0]["frames"][1]["pc"].get<uint64_t>();
  std::snprintf(addr, sizeof addr, "%#llx", static_cast<unsigned long long>(pc - 1));
  run = AnalyzeJson(core, {std::string("sym ") + addr});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_TRUE(run.outputs[0].contains("functions")) << run.outputs[0].dump(2);
  EXPECT_FALSE(run.outputs[0]["functions"].back()["function"].get<std::string>().empty());
}

}  // namespace
}  // namespace cppdiag::analyze_test

namespace cppdiag::analyze_test {
namespace {

// The executable's module in `modules` JSON.
json ExecutableModule(const AnalyzeRun& run) {
  for (const json& m : run.outputs.at(0)) {
    if (m["executable"].get<bool>()) return m;
  }
  ADD_FAILURE() << run.out;
  return {};
}

TEST(AnalyzeCoresTest, ASysrootFileOfAnotherBuildIsReportedNotUsed) {
  TempDir dir;
  const std::string core = dir.path() + "/core";
  ASSERT_GT(WriteOurDump("full", core, 0), 0);
  AnalyzeRun plain = AnalyzeJson(core, {"modules"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const std::string build_id = ExecutableModule(plain)["build_id"];
  ASSERT_FALSE(build_id.empty());

  // Under one sysroot the executable's path holds the same build, under
  // the other /usr/bin/true.
  for (const char* which : {"same", "other"}) {
    SCOPED_TRACE(which);
    const std::string root = dir.path() + "/" + which, exe = root + Target();
    fs::create_directories(fs::path(exe).parent_path());
    fs::copy_file(std::string(which) == "same" ? Target() : "/usr/bin/true", exe);
    AnalyzeRun run = AnalyzeJson(core, {"modules"}, {"--sysroot", root});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    json m = ExecutableModule(run);
    EXPECT_EQ(m["build_id"], build_id) << m;
    if (std::string(which) == "same") {
      EXPECT_EQ(m["file"], Target()) << m << " (the path under the sysroot)";
      EXPECT_TRUE(m["symbols"].get<bool>());
    } else {
      EXPECT_FALSE(m.contains("file")) << m;
      EXPECT_FALSE(m["symbols"].get<bool>());
      EXPECT_NE(m.value("not_read", "").find("is another build"), std::string::npos) << m;
      EXPECT_NE(m.value("not_read", "").find(build_id), std::string::npos) << m;
    }
  }
}

}  // namespace
}  // namespace cppdiag::analyze_test
