// The flows of DESIGN.md "Crash dump on OOM" and "Pre-OOM dump", end to end:
// the real leakapp in a real memory cgroup, real ELF cores read by gdb and
// eu-stack.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <filesystem>
#include <regex>

#include "common/io.h"
#include "support/scoped_cgroup.h"
#include "support/scoped_temp_dir.h"
#include "support/subprocess.h"

namespace cppdiag {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::ScopedCgroup;
using testing::Subprocess;
using testing::SubprocessOptions;

// A temporary directory for dumps, removed at the end.
class TempDir : public testing::ScopedTempDir {
 public:
  TempDir() : ScopedTempDir("cppdiag-dumps") {}
  std::vector<std::string> Files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path())) out.push_back(e.path().filename());
    return out;
  }
};

std::string Gdb(const std::string& core) {
  return testing::GdbBatch(testing::BuiltBinary("leakapp"), core);
}

struct Leakapp {
  std::unique_ptr<Subprocess> proc;
  int port = 0;
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(5, 0);
    return c;
  }
};

Leakapp StartLeakapp(const ScopedCgroup* cg, std::map<std::string, std::string> env) {
  Leakapp app;
  // Port 0: leakapp binds a free one and logs it.
  SubprocessOptions o{
      .argv = {testing::BuiltBinary("leakapp"), "--port", "0", "--bind", "127.0.0.1"},
      .env = std::move(env)};
  if (cg) o.cgroup_procs = cg->procs_file();
  app.proc = std::make_unique<Subprocess>(o);
  app.port = testing::WaitForListeningPort(*app.proc, 10s).value_or(0);
  bool ready = app.port != 0 && testing::PollUntil(
                                    [&] {
                                      auto r = app.client().Get("/readyz");
                                      return (r && r->status == 200) || !app.proc->running();
                                    },
                                    10s);
  EXPECT_TRUE(ready && app.proc->running()) << "port " << app.port << "\n"
                                            << app.proc->Stdout() << app.proc->Stderr();
  return app;
}

uint64_t FileSize(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

mode_t FileMode(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

// Flow 1: heap hard limit (default 75 % of 256 MiB) → bad_alloc → OOM line →
// SIGABRT → full dump that gdb and eu-stack read, showing the leak function.
TEST(OomDump, HardLimitCrashLeavesAFullDumpWithTheLeakStack) {
  ScopedCgroup cg(256u << 20);
  if (!cg.ok()) GTEST_SKIP() << cg.why_not();
  TempDir dumps;
  auto app = StartLeakapp(&cg, {{"CPPDIAG_ENABLE_DUMP_ON_CRASH", "1"},
                                {"CPPDIAG_DUMP_TYPE", "full"},
                                {"CPPDIAG_DUMP_NAME", dumps.path() + "/core.%e.%p"}});
  ASSERT_TRUE(app.proc->running());
  auto r = app.client().Get("/triggerMemoryLeak?intervalMs=5&pattern=vector");
  ASSERT_TRUE(r && r->status == 200);
  auto end = app.proc->Wait(60s);
  ASSERT_TRUE(end.has_value()) << "leakapp did not die";
  std::string out = app.proc->Stdout() + app.proc->Stderr();
  EXPECT_NE(out.find("OutOfMemory caught! Application is likely to crash soon."), std::string::npos)
      << out;
  ASSERT_TRUE(end->signal.has_value()) << end->ToString() << "\n" << out;
  EXPECT_EQ(*end->signal, SIGABRT) << end->ToString() << " (SIGKILL means the OOM killer won)";
  EXPECT_EQ(cg.oom_kills(), 0u);

  std::string core = dumps.path() + "/core.leakapp." + std::to_string(app.proc->pid());
  ASSERT_EQ(dumps.Files(), std::vector<std::string>{fs::path(core).filename()})
      << "exactly the dump, no temporary file; output:\n"
      << out;
  EXPECT_GE(FileSize(core), 100u << 20);
  EXPECT_EQ(FileMode(core), 0600);
  std::string bt = Gdb(core);
  EXPECT_NE(bt.find("LeakIntoVector"), std::string::npos) << bt;
  EXPECT_NE(bt.find("SIGABRT"), std::string::npos) << bt;
  std::string stack = testing::RunToCompletion(
      {"/usr/bin/eu-stack", "--core=" + core, "--executable=" + testing::BuiltBinary("leakapp")});
  EXPECT_NE(stack.find("LeakIntoVector"), std::string::npos) << stack;
}

// Flow 2's crash kind: a segfault with a mini dump; the mini dump is at least
// 20 times smaller than a full dump of the same process state.
TEST(OomDump, SegfaultMiniDumpIsSmallAndShowsTheCrashingFrame) {
  TempDir dumps;
  std::map<std::string, uint64_t> sizes;
  for (const char* type : {"full", "mini"}) {
    auto app = StartLeakapp(nullptr, {{"CPPDIAG_ENABLE_DUMP_ON_CRASH", "1"},
                                      {"CPPDIAG_DUMP_TYPE", type},
                                      {"CPPDIAG_HEAP_HARD_LIMIT", "0"},
                                      {"CPPDIAG_DUMP_NAME", dumps.path() + "/core.%p." + type}});
    ASSERT_TRUE(app.proc->running());
    auto r = app.client().Get("/triggerMemoryLeak?intervalMs=1&maxMb=200");
    ASSERT_TRUE(r && r->status == 200);
    ASSERT_TRUE(app.proc->WaitForOutput("Total: 200", 30s)) << app.proc->Stdout();
    r = app.client().Post("/crash?kind=segv");
    auto end = app.proc->Wait(60s);
    ASSERT_TRUE(end.has_value());
    ASSERT_TRUE(end->signal.has_value()) << end->ToString();
    EXPECT_EQ(*end->signal, SIGSEGV);  // a shell reports 139
    std::string core = dumps.path() + "/core." + std::to_string(app.proc->pid()) + "." + type;
    sizes[type] = FileSize(core);
    ASSERT_GT(sizes[type], 0u) << app.proc->Stderr();
    std::string bt = Gdb(core);
    EXPECT_NE(bt.find("SIGSEGV"), std::string::npos) << bt;
    EXPECT_NE(bt.find("CrashWithSegv"), std::string::npos) << bt;
  }
  EXPECT_GE(sizes["full"], 20 * sizes["mini"])
      << "full " << sizes["full"] << " bytes, mini " << sizes["mini"] << " bytes";
}

// An unwritable dump directory: the process still dies of its own signal and
// says why there is no dump; nothing is left behind.
TEST(OomDump, UnwritableDirectoryStillCrashesWithItsOwnSignal) {
  TempDir dumps;
  // Root ignores permission bits: a read-only mount is what stops root.
  ASSERT_EQ(::mount("tmpfs", dumps.path().c_str(), "tmpfs", MS_RDONLY, "size=1m"), 0)
      << std::strerror(errno);
  auto app = StartLeakapp(nullptr, {{"CPPDIAG_ENABLE_DUMP_ON_CRASH", "1"},
                                    {"CPPDIAG_DUMP_NAME", dumps.path() + "/core.%p"}});
  auto r = app.client().Post("/crash?kind=segv");
  auto end = app.proc->Wait(30s);
  ::umount(dumps.path().c_str());
  ASSERT_TRUE(end.has_value());
  ASSERT_TRUE(end->signal.has_value()) << end->ToString();
  EXPECT_EQ(*end->signal, SIGSEGV);
  std::string err = app.proc->Stderr();
  EXPECT_NE(err.find("no dump written"), std::string::npos) << err;
  EXPECT_NE(err.find("EROFS"), std::string::npos) << err;
  EXPECT_TRUE(dumps.Files().empty());
}

// Flow 2: no hard limit, the watchdog at 85 % of 200 MiB. The kernel's OOM
// killer ends the process, and a dump was completed before it, every time.
class WatchdogRace : public ::testing::TestWithParam<int> {};

TEST_P(WatchdogRace, DumpCompletesBeforeTheOomKill) {
  const int interval_ms = GetParam();
  constexpr int kRuns = 10;
  int completed = 0;
  for (int run = 0; run < kRuns; ++run) {
    ScopedCgroup cg(200u << 20);
    if (!cg.ok()) GTEST_SKIP() << cg.why_not();
    TempDir dumps;
    auto app = StartLeakapp(&cg, {{"CPPDIAG_HEAP_HARD_LIMIT", "0"},
                                  {"CPPDIAG_OOM_DUMP_THRESHOLD", "85"},
                                  {"CPPDIAG_DUMP_NAME", dumps.path() + "/core.%p.%r"}});
    ASSERT_TRUE(app.proc->running());
    // Reach 120 MB fast, then cross the threshold (170 MB) at the rate under test.
    auto r = app.client().Get("/triggerMemoryLeak?intervalMs=1&maxMb=120");
    ASSERT_TRUE(r && r->status == 200);
    ASSERT_TRUE(app.proc->WaitForOutput("Total: 120", 30s)) << app.proc->Stdout();
    app.client().Get("/stopMemoryLeak");
    r = app.client().Get("/triggerMemoryLeak?intervalMs=" + std::to_string(interval_ms));
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no reply");
    auto end = app.proc->Wait(120s);
    ASSERT_TRUE(end.has_value()) << "not killed";
    std::string err = app.proc->Stderr();
    ASSERT_TRUE(end->signal.has_value()) << end->ToString();
    EXPECT_EQ(*end->signal, SIGKILL) << end->ToString() << "\n" << err;
    EXPECT_GE(cg.oom_kills(), 1u);
    std::string core = dumps.path() + "/core." + std::to_string(app.proc->pid()) + ".oom-watchdog";
    if (fs::exists(core) && dumps.Files().size() == 1) {
      ++completed;
      if (run == 0) {
        // The leak thread is there (between rounds it sleeps in LeakEngine::Run).
        std::string bt = Gdb(core);
        EXPECT_NE(bt.find("leakapp::LeakEngine::Run"), std::string::npos) << bt;
      }
    } else {
      ADD_FAILURE() << "run " << run << ": no complete dump; files: " << dumps.Files().size()
                    << "\n"
                    << err;
    }
  }
  EXPECT_EQ(completed, kRuns);
}

INSTANTIATE_TEST_SUITE_P(LeakRates, WatchdogRace, ::testing::Values(5, 20, 100),
                         [](const auto& param_info) {
                           return "OneMiBEvery" + std::to_string(param_info.param) + "ms";
                         });

}  // namespace
}  // namespace cppdiag
