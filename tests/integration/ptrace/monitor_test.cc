// `cppdiag monitor` on ptrace_target (no libcppdiag, so dumped with ptrace):
// the memory list fires once per size as RSS grows, the cgroup trigger as
// the cgroup fills, threads and descriptors at their counts; the exit status
// says whether every dump was written. Synchronised on the processes' output.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <string>

#include "support/scoped_cgroup.h"
#include "support/subprocess.h"

namespace cppdiag {
namespace {

using cppdiag::testing::Subprocess;
using cppdiag::testing::SubprocessOptions;
using std::chrono::seconds;
namespace fs = std::filesystem;

const std::string kTarget = PTRACE_TARGET;

uint64_t StatusKb(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1));
  }
  return 0;
}

// The paths of the firing lines "<time> <trigger> <value> >= <threshold> <path>".
std::vector<std::string> Fired(const std::string& out, const std::string& trigger) {
  std::vector<std::string> paths;
  std::regex line("\\S+Z " + trigger + " .* >= .* (/\\S+)");
  for (std::sregex_iterator it(out.begin(), out.end(), line), end; it != end; ++it)
    paths.push_back((*it)[1]);
  return paths;
}

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/monitor-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    monitor_.reset();
    target_.reset();
    fs::remove_all(dir_);
  }
  void StartTarget(std::vector<std::string> args, const std::string& cgroup_procs = "") {
    args.insert(args.begin(), kTarget);
    target_.emplace(SubprocessOptions{.argv = args, .cgroup_procs = cgroup_procs});
    ASSERT_TRUE(target_->WaitForOutput("READY", seconds(30))) << target_->Stderr();
  }
  void StartMonitor(std::vector<std::string> args) {
    std::vector<std::string> argv = {cppdiag::testing::BuiltBinary("cppdiag"),
                                     "monitor",
                                     "-p",
                                     std::to_string(target_->pid()),
                                     "--poll",
                                     "20ms",
                                     "-o",
                                     dir_,
                                     "--type",
                                     "mini"};
    argv.insert(argv.end(), args.begin(), args.end());
    monitor_.emplace(SubprocessOptions{.argv = argv});
    ASSERT_TRUE(monitor_->WaitForOutput("Monitoring process", seconds(30))) << monitor_->Stderr();
  }
  void Grow(int n) {
    target_->Signal(SIGUSR1);
    ASSERT_TRUE(target_->WaitForOutput("ALIVE " + std::to_string(n), seconds(30)));
  }
  int MonitorExit() {
    auto t = monitor_->Wait(seconds(60));
    EXPECT_TRUE(t.has_value()) << monitor_->Stdout() << monitor_->Stderr();
    return t && t->exit_code ? *t->exit_code : -1;
  }

  std::string dir_;
  std::optional<Subprocess> target_, monitor_;
};

// --memory A,B: one dump as RSS reaches A, one as it reaches B, then exit 0.
TEST_F(MonitorTest, MemoryListDumpsOncePerSizeAsRssGrows) {
  StartTarget({"--leak-mb", "48"});
  uint64_t rss = StatusKb(target_->pid(), "VmRSS") << 10;
  std::string a = std::to_string((rss >> 20) + 32) + "M";
  std::string b = std::to_string((rss >> 20) + 80) + "M";
  StartMonitor({"--memory", a + "," + b});
  Grow(1);  // +48 MiB: over A only
  ASSERT_TRUE(monitor_->WaitForOutput(" memory ", seconds(60))) << monitor_->Stderr();
  EXPECT_EQ(Fired(monitor_->Stdout(), "memory").size(), 1u) << monitor_->Stdout();
  Grow(2);  // +96 MiB: over B
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  auto paths = Fired(monitor_->Stdout(), "memory");
  ASSERT_EQ(paths.size(), 2u) << monitor_->Stdout();
  for (const std::string& p : paths) {
    ASSERT_TRUE(fs::exists(p)) << p;
    std::string gdb = cppdiag::testing::GdbBatch(kTarget, p);
    EXPECT_NE(gdb.find(" wait_on_pipe ("), std::string::npos) << gdb;
  }
  EXPECT_NE(monitor_->Stdout().find(">= " + std::string(a.substr(0, a.size() - 1))),
            std::string::npos);
  EXPECT_TRUE(target_->running());
}

// --cgroup-memory PCT: the target's memory cgroup usage against its limit.
TEST_F(MonitorTest, CgroupMemoryFiresAsTheCgroupFills) {
  cppdiag::testing::ScopedCgroup cg(256u << 20);
  if (!cg.ok()) GTEST_SKIP() << cg.why_not();
  StartTarget({"--leak-mb", "64"}, cg.procs_file());
  StartMonitor({"--cgroup-memory", "60"});
  Grow(1);
  Grow(2);
  Grow(3);  // 192 MiB of 256: 75 %
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  auto paths = Fired(monitor_->Stdout(), "cgroup-memory");
  ASSERT_EQ(paths.size(), 1u) << monitor_->Stdout();
  std::smatch m;
  const std::string out = monitor_->Stdout();
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(cgroup-memory ([0-9.]+)%)")));
  EXPECT_GE(std::stod(m[1]), 60.0);
  EXPECT_TRUE(fs::exists(paths[0]));
  EXPECT_EQ(cg.oom_kills(), 0u);
}

// --threads and --fds fire at their counts (the target has 6 threads, and
// every worker holds a pipe).
TEST_F(MonitorTest, ThreadsAndFdsFireAtTheirCounts) {
  StartTarget({});
  StartMonitor({"--threads", "6", "--fds", "8", "-n", "2"});
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  EXPECT_EQ(Fired(monitor_->Stdout(), "threads").size(), 1u) << monitor_->Stdout();
  EXPECT_EQ(Fired(monitor_->Stdout(), "fds").size(), 1u) << monitor_->Stdout();
  EXPECT_TRUE(target_->running());
}

// A target that exits first: exit status 1 and why, in one line.
TEST_F(MonitorTest, TargetExitingFirstIsAFailureSaidInOneLine) {
  StartTarget({});
  StartMonitor({"--threads", "1000"});
  target_->Signal(SIGTERM);
  ASSERT_TRUE(target_->Wait(seconds(30)).has_value());
  EXPECT_EQ(MonitorExit(), 1);
  EXPECT_EQ(monitor_->Stderr(), "cppdiag: stopped with 0 of 1 dumps written: the target exited\n");
}

}  // namespace
}  // namespace cppdiag
