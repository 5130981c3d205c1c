// `cppdiag monitor` on ptrace_target (no libcppdiag, so dumped with ptrace):
// the memory list fires once per size as RSS grows, the cgroup trigger as
// the cgroup fills, threads and descriptors at their counts; the exit status
// says whether every dump was written. Synchronised on the processes' output.
#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
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

// The paths of the firing lines "<time> <pid> <trigger> <value> [<op> <threshold>] <path> (...)".
std::vector<std::string> Fired(const std::string& out, const std::string& trigger) {
  std::vector<std::string> paths;
  std::regex line("\\S+Z [0-9]+ " + trigger + " [^\n]* (/\\S+) \\(");
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

// The first value a trigger printed ("cpu 97.0% >= 30.0%" -> 97.0).
double FiredValue(const std::string& out, const std::string& trigger) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("Z [0-9]+ " + trigger + " ([0-9.]+)"))) return -1;
  return std::stod(m[1]);
}

// A cpu cgroup (v1 cfs or v2 cpu.max) with a quota of half a core, under ours.
class ScopedCpuQuota {
 public:
  ScopedCpuQuota() {
    std::ifstream in("/proc/self/cgroup");
    for (std::string line; std::getline(in, line);) {
      auto a = line.find(':'), b = line.find(':', a + 1);
      std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
      std::string base;
      if (std::regex_search(controllers, std::regex("(^|,)cpu(,|$)"))) {
        base = "/sys/fs/cgroup/" + controllers + path;
        if (!fs::exists(base)) base = "/sys/fs/cgroup/cpu" + path;
      } else if (controllers.empty() && fs::exists("/sys/fs/cgroup/cgroup.controllers")) {
        base = "/sys/fs/cgroup" + path;
      }
      if (base.empty() || !fs::exists(base)) continue;
      std::string dir = base + "/cppdiag-cpu-test-" + std::to_string(::getpid());
      if (::mkdir(dir.c_str(), 0755) != 0) continue;
      bool v1 = fs::exists(dir + "/cpu.cfs_quota_us");
      std::ofstream(v1 ? dir + "/cpu.cfs_period_us" : dir + "/cpu.max")
          << (v1 ? "100000" : "50000 100000");
      if (v1) std::ofstream(dir + "/cpu.cfs_quota_us") << "50000";
      dir_ = dir;
      return;
    }
  }
  ~ScopedCpuQuota() {
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }
  bool ok() const { return !dir_.empty(); }
  std::string procs() const { return dir_ + "/cgroup.procs"; }

 private:
  std::string dir_;
};

// --cpu is CPU over the last second, not a lifetime average: the target's
// spinning thread fires it; --cpu-below, watching the same samples, does not.
TEST_F(MonitorTest, BusyLoopFiresCpuAndNotCpuBelow) {
  StartTarget({});
  StartMonitor({"--cpu", "30", "--cpu-below", "5", "-s", "1"});
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  const std::string out = monitor_->Stdout();
  ASSERT_EQ(Fired(out, "cpu").size(), 1u) << out;
  EXPECT_EQ(Fired(out, "cpu-below").size(), 0u) << out;
  EXPECT_GE(FiredValue(out, "cpu"), 30.0) << out;
  EXPECT_TRUE(fs::exists(Fired(out, "cpu")[0]));
}

// The same process without its spinning thread: --cpu-below fires after two
// seconds of samples under 5 %, in which --cpu never fired.
TEST_F(MonitorTest, IdleProcessFiresCpuBelowAndNotCpu) {
  StartTarget({"--idle"});
  StartMonitor({"--cpu", "30", "--cpu-below", "5", "-s", "2"});
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  const std::string out = monitor_->Stdout();
  ASSERT_EQ(Fired(out, "cpu-below").size(), 1u) << out;
  EXPECT_EQ(Fired(out, "cpu").size(), 0u) << out;
  EXPECT_LT(FiredValue(out, "cpu-below"), 5.0) << out;
}

// --of-quota: the spinner in a cgroup of half a core uses most of its quota,
// twice what it uses of one core.
TEST_F(MonitorTest, OfQuotaMeasuresAgainstTheCgroupsQuota) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a cpu cgroup";
  ScopedCpuQuota quota;
  if (!quota.ok()) GTEST_SKIP() << "no writable cpu cgroup";
  StartTarget({}, quota.procs());
  StartMonitor({"--cpu", "60", "--of-quota", "-s", "1"});
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  const std::string out = monitor_->Stdout();
  ASSERT_EQ(Fired(out, "cpu").size(), 1u) << out;
  EXPECT_GE(FiredValue(out, "cpu"), 60.0) << out;
  EXPECT_LE(FiredValue(out, "cpu"), 110.0) << out;  // of half a core: never much over 100 %
  target_.reset();
}

// --memory-below: RSS falling under the size (the target frees what it leaked).
TEST_F(MonitorTest, MemoryBelowFiresWhenRssFalls) {
  StartTarget({"--leak-mb", "64"});
  Grow(1);
  uint64_t rss = StatusKb(target_->pid(), "VmRSS") << 10;
  std::string below = std::to_string((rss >> 20) - 32) + "M";
  StartMonitor({"--memory-below", below});
  target_->Signal(SIGUSR2);
  ASSERT_TRUE(target_->WaitForOutput("FREED 1", seconds(30)));
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  const std::string out = monitor_->Stdout();
  ASSERT_EQ(Fired(out, "memory-below").size(), 1u) << out;
  EXPECT_NE(out.find(" < " + below.substr(0, below.size() - 1)), std::string::npos) << out;
  EXPECT_LT(StatusKb(target_->pid(), "VmRSS") << 10, rss - (32u << 20));
}

// --timer -n 3 -s 1: three dumps, a second apart, each its own file that gdb
// opens; the target runs on.
TEST_F(MonitorTest, TimerWritesNDumpsSSecondsApart) {
  StartTarget({});
  StartMonitor({"--timer", "-n", "3", "-s", "1"});
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  auto paths = Fired(monitor_->Stdout(), "timer");
  ASSERT_EQ(paths.size(), 3u) << monitor_->Stdout();
  EXPECT_NE(monitor_->Stdout().find(" timer 3/3 "), std::string::npos) << monitor_->Stdout();
  std::set<std::string> distinct(paths.begin(), paths.end());
  EXPECT_EQ(distinct.size(), 3u);
  for (const std::string& p : paths) {
    ASSERT_TRUE(fs::exists(p)) << p;
    EXPECT_NE(cppdiag::testing::GdbBatch(kTarget, p).find(" spin_forever ("), std::string::npos);
  }
  EXPECT_TRUE(target_->running());
}

// --action exec:CMD runs CMD (no shell) with the dump's path in place of {}
// and says how it ended; a command that fails makes the exit status 1.
TEST_F(MonitorTest, ExecActionRunsTheCommandWithTheDumpPath) {
  StartTarget({});
  const std::string copy = dir_ + "/copied core";
  StartMonitor({"--threads", "2", "--action", "exec:/bin/cp {} '" + copy + "'"});
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  auto paths = Fired(monitor_->Stdout(), "threads");
  ASSERT_EQ(paths.size(), 1u) << monitor_->Stdout();
  EXPECT_NE(monitor_->Stdout().find(": exit status 0"), std::string::npos) << monitor_->Stdout();
  ASSERT_TRUE(fs::exists(copy));
  EXPECT_EQ(fs::file_size(copy), fs::file_size(paths[0]));

  monitor_.reset();
  StartMonitor({"--threads", "2", "--action", "exec:/bin/false"});
  EXPECT_EQ(MonitorExit(), 1);
  EXPECT_NE(monitor_->Stdout().find("exec /bin/false: exit status 1"), std::string::npos)
      << monitor_->Stdout();
  EXPECT_EQ(monitor_->Stderr(), "cppdiag: 1 of 1 --action commands failed\n");
}

// The monitor with `args` only (no -p): -w NAME, --pgid G.
void StartMonitorOf(std::optional<Subprocess>* monitor, const std::string& dir,
                    std::vector<std::string> args) {
  std::vector<std::string> argv = {cppdiag::testing::BuiltBinary("cppdiag"),
                                   "monitor",
                                   "--poll",
                                   "20ms",
                                   "-o",
                                   dir,
                                   "--type",
                                   "mini"};
  argv.insert(argv.end(), args.begin(), args.end());
  monitor->emplace(SubprocessOptions{.argv = argv});
  ASSERT_TRUE((*monitor)->WaitForOutput("Monitoring ", seconds(30))) << (*monitor)->Stderr();
}

// A copy of ptrace_target under a name of this test's own, so that -w finds
// no other test's ptrace_target.
std::string NamedCopy(const std::string& dir, std::string* name) {
  *name = "mt" + std::to_string(::getpid());
  fs::create_directories(dir + "/bin");
  const std::string path = dir + "/bin/" + *name;
  fs::copy_file(kTarget, path, fs::copy_options::overwrite_existing);
  return path;
}

// -w NAME: a process started after the monitor is found, watched and dumped.
TEST_F(MonitorTest, WaitNameDumpsAProcessStartedAfterTheMonitor) {
  std::string name;
  const std::string exe = NamedCopy(dir_, &name);
  StartMonitorOf(&monitor_, dir_, {"-w", name, "--threads", "2"});
  target_.emplace(SubprocessOptions{.argv = {exe}});
  ASSERT_TRUE(target_->WaitForOutput("READY", seconds(30))) << target_->Stderr();
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  const std::string out = monitor_->Stdout();
  const std::string pid = std::to_string(target_->pid());
  EXPECT_NE(out.find(" " + pid + " watching " + name), std::string::npos) << out;
  auto paths = Fired(out, "threads");
  ASSERT_EQ(paths.size(), 1u) << out;
  EXPECT_NE(paths[0].find("." + pid + "."), std::string::npos) << paths[0];
  // Dumped as it starts (its workers may not sit in wait_on_pipe yet): gdb
  // reads the core as that program's.
  const std::string gdb = cppdiag::testing::GdbBatch(exe, paths[0]);
  EXPECT_NE(gdb.find("Core was generated by `" + exe), std::string::npos) << gdb;
  EXPECT_TRUE(target_->running());
}

// -w NAME with two processes of that name: each gets its own dump when its
// own RSS crosses the size, and the monitor exits 0 once both have.
TEST_F(MonitorTest, WaitNameDumpsEachOfTwoProcesses) {
  std::string name;
  const std::string exe = NamedCopy(dir_, &name);
  target_.emplace(SubprocessOptions{.argv = {exe, "--leak-mb", "48"}});
  ASSERT_TRUE(target_->WaitForOutput("READY", seconds(30))) << target_->Stderr();
  std::optional<Subprocess> second(SubprocessOptions{.argv = {exe, "--leak-mb", "48"}});
  ASSERT_TRUE(second->WaitForOutput("READY", seconds(30))) << second->Stderr();
  uint64_t rss = std::max(StatusKb(target_->pid(), "VmRSS"), StatusKb(second->pid(), "VmRSS"))
                 << 10;
  StartMonitorOf(&monitor_, dir_, {"-w", name, "--memory", std::to_string((rss >> 20) + 32) + "M"});
  const std::string a = std::to_string(target_->pid()), b = std::to_string(second->pid());
  ASSERT_TRUE(monitor_->WaitForOutput(" " + a + " watching ", seconds(30))) << monitor_->Stdout();
  ASSERT_TRUE(monitor_->WaitForOutput(" " + b + " watching ", seconds(30))) << monitor_->Stdout();
  EXPECT_TRUE(Fired(monitor_->Stdout(), "memory").empty()) << monitor_->Stdout();
  Grow(1);
  ASSERT_TRUE(monitor_->WaitForOutput(" " + a + " memory ", seconds(60))) << monitor_->Stdout();
  EXPECT_TRUE(monitor_->running());  // the second has not had its dump
  second->Signal(SIGUSR1);
  ASSERT_TRUE(second->WaitForOutput("ALIVE 1", seconds(30)));
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  auto paths = Fired(monitor_->Stdout(), "memory");
  ASSERT_EQ(paths.size(), 2u) << monitor_->Stdout();
  EXPECT_NE(paths[0].find("." + a + "."), std::string::npos) << paths[0];
  EXPECT_NE(paths[1].find("." + b + "."), std::string::npos) << paths[1];
  for (const std::string& p : paths) EXPECT_TRUE(fs::exists(p)) << p;
}

// An --action command that, for process `slow` only, runs until `release`
// exists: that target's firing lasts as long as the test wants.
std::string HoldFiringOf(pid_t slow, const std::string& release) {
  return "exec:sh -c 'test \"$CPPDIAG_PID\" != " + std::to_string(slow) + " || while [ ! -e " +
         release + " ]; do sleep 0.05; done'";
}

// -w NAME: while one target's firing runs on (its --action command), a
// process that appears later is still watched, fires and is dumped: each
// target's firing runs on its own worker, not in the monitor's one loop.
TEST_F(MonitorTest, WaitNameFiresASecondTargetWhileTheFirstsFiringRuns) {
  std::string name;
  const std::string exe = NamedCopy(dir_, &name);
  target_.emplace(SubprocessOptions{.argv = {exe}});
  ASSERT_TRUE(target_->WaitForOutput("READY", seconds(30))) << target_->Stderr();
  const std::string release = dir_ + "/release";
  const std::string a = std::to_string(target_->pid());
  StartMonitorOf(&monitor_, dir_,
                 {"-w", name, "--threads", "2", "--action", HoldFiringOf(target_->pid(), release)});
  ASSERT_TRUE(monitor_->WaitForOutput(" " + a + " threads ", seconds(60))) << monitor_->Stdout();

  std::optional<Subprocess> second(SubprocessOptions{.argv = {exe}});
  ASSERT_TRUE(second->WaitForOutput("READY", seconds(30))) << second->Stderr();
  const std::string b = std::to_string(second->pid());
  EXPECT_TRUE(monitor_->WaitForOutput(" " + b + " exec sh ", seconds(60))) << monitor_->Stdout();
  const std::string out = monitor_->Stdout();
  EXPECT_EQ(out.find(" " + a + " exec "), std::string::npos) << out;  // still running
  auto paths = Fired(out, "threads");
  ASSERT_EQ(paths.size(), 2u) << out;
  EXPECT_NE(paths[1].find("." + b + "."), std::string::npos) << paths[1];
  EXPECT_TRUE(monitor_->running());  // the first target's firing has not ended

  std::ofstream(release).put('\n');
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stdout() << monitor_->Stderr();
  EXPECT_NE(monitor_->Stdout().find(" " + a + " exec sh "), std::string::npos)
      << monitor_->Stdout();
  for (const std::string& p : paths) EXPECT_TRUE(fs::exists(p)) << p;
}

// Ctrl-C while a target's firing runs: the worker's command is ended
// (SIGTERM), the monitor waits for it and exits, saying so.
TEST_F(MonitorTest, SigintEndsAFiringThatRunsOn) {
  std::string name;
  const std::string exe = NamedCopy(dir_, &name);
  target_.emplace(SubprocessOptions{.argv = {exe}});
  ASSERT_TRUE(target_->WaitForOutput("READY", seconds(30))) << target_->Stderr();
  const std::string a = std::to_string(target_->pid());
  StartMonitorOf(
      &monitor_, dir_,
      {"-w", name, "--threads", "2", "--action", HoldFiringOf(target_->pid(), dir_ + "/never")});
  ASSERT_TRUE(monitor_->WaitForOutput(" " + a + " threads ", seconds(60))) << monitor_->Stdout();
  monitor_->Signal(SIGINT);
  EXPECT_EQ(MonitorExit(), 1) << monitor_->Stdout();
  EXPECT_NE(monitor_->Stdout().find(" " + a + " exec sh -c "), std::string::npos)
      << monitor_->Stdout();
  EXPECT_NE(monitor_->Stdout().find(": killed by SIGTERM"), std::string::npos)
      << monitor_->Stdout();
  EXPECT_NE(monitor_->Stderr().find("--action commands failed"), std::string::npos)
      << monitor_->Stderr();
  EXPECT_TRUE(target_->running());
}

// --pgid G: the process of a group of its own (setsid) is watched and dumped;
// a group with no process is refused in one line.
TEST_F(MonitorTest, PgidDumpsTheGroupsProcessAndRefusesAnEmptyGroup) {
  target_.emplace(SubprocessOptions{.argv = {"/usr/bin/setsid", kTarget}});
  ASSERT_TRUE(target_->WaitForOutput("READY", seconds(30))) << target_->Stderr();
  ASSERT_EQ(::getpgid(target_->pid()), target_->pid());  // setsid exec'd in place
  StartMonitorOf(&monitor_, dir_, {"--pgid", std::to_string(target_->pid()), "--threads", "2"});
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  auto paths = Fired(monitor_->Stdout(), "threads");
  ASSERT_EQ(paths.size(), 1u) << monitor_->Stdout();
  EXPECT_NE(paths[0].find("." + std::to_string(target_->pid()) + "."), std::string::npos);

  Subprocess empty(SubprocessOptions{.argv = {cppdiag::testing::BuiltBinary("cppdiag"), "monitor",
                                              "--pgid", "999999999", "--threads", "2"}});
  auto t = empty.Wait(seconds(30));
  ASSERT_TRUE(t && t->exit_code);
  EXPECT_EQ(*t->exit_code, 1);
  EXPECT_EQ(empty.Stderr(), "cppdiag: process group 999999999 has no process\n");
}

// --action heap-snapshot: the target with libcppdiag (preloaded) has its
// live heap written into -o DIR as a pprof profile `heap report` reads; one
// without is refused in one line before any firing.
TEST_F(MonitorTest, HeapSnapshotActionWritesAProfileAndNeedsLibcppdiag) {
  target_.emplace(SubprocessOptions{
      .argv = {kTarget},
      .env = {{"LD_PRELOAD", CPPDIAG_PRELOAD_LIB}, {"CPPDIAG_HEAP_SAMPLE_BYTES", "4096"}}});
  ASSERT_TRUE(target_->WaitForOutput("READY", seconds(30))) << target_->Stderr();
  const std::string socket_prefix = "cppdiag-" + std::to_string(target_->pid()) + "-";
  ASSERT_TRUE(cppdiag::testing::PollUntil(
      [&] {
        for (const auto& e : fs::directory_iterator("/tmp"))
          if (e.path().filename().string().rfind(socket_prefix, 0) == 0) return true;
        return false;
      },
      std::chrono::milliseconds(30000)));
  StartMonitor({"--threads", "2", "--action", "heap-snapshot"});
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  const std::string out = monitor_->Stdout();
  auto paths = Fired(out, "threads");
  ASSERT_EQ(paths.size(), 1u) << out;
  EXPECT_EQ(paths[0].rfind(dir_ + "/heap.", 0), 0u) << paths[0];
  EXPECT_NE(out.find("(heap snapshot, "), std::string::npos) << out;
  Subprocess report(SubprocessOptions{
      .argv = {cppdiag::testing::BuiltBinary("cppdiag"), "heap", "report", paths[0]}});
  auto t = report.Wait(seconds(60));
  ASSERT_TRUE(t && t->exit_code);
  EXPECT_EQ(*t->exit_code, 0) << report.Stderr();
  EXPECT_NE(report.Stdout().find("(sample period 4.0 KiB)"), std::string::npos) << report.Stdout();
  EXPECT_TRUE(target_->running());

  monitor_.reset();
  target_.reset();
  StartTarget({});
  Subprocess refused(SubprocessOptions{.argv = {cppdiag::testing::BuiltBinary("cppdiag"), "monitor",
                                                "-p", std::to_string(target_->pid()), "--threads",
                                                "2", "--action", "heap-snapshot"}});
  t = refused.Wait(seconds(30));
  ASSERT_TRUE(t && t->exit_code);
  EXPECT_EQ(*t->exit_code, 1);
  EXPECT_EQ(refused.Stderr().rfind("cppdiag: --action heap-snapshot needs libcppdiag in the "
                                   "target: ",
                                   0),
            0u)
      << refused.Stderr();
  const std::string err = refused.Stderr();
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

// SIGINT stops the monitor cleanly: exit 1, one line saying how many dumps
// of how many were written, the target untouched.
TEST_F(MonitorTest, SigintStopsCleanlyAndSaysSo) {
  StartTarget({});
  StartMonitor({"--threads", "1000", "-n", "2"});
  monitor_->Signal(SIGINT);
  EXPECT_EQ(MonitorExit(), 1);
  EXPECT_EQ(monitor_->Stderr(), "cppdiag: stopped with 0 of 2 dumps written: interrupted\n");
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

// --signal SIGUSR1: a dump with every thread, then the signal is delivered
// (the handler ran: ALIVE 1), and the target is left untraced.
TEST_F(MonitorTest, SignalDumpsThenDeliversTheSignal) {
  StartTarget({"--main-read"});
  StartMonitor({"--signal", "SIGUSR1"});
  target_->Signal(SIGUSR1);
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  ASSERT_TRUE(target_->WaitForOutput("ALIVE 1", seconds(30)));
  EXPECT_NE(monitor_->Stdout().find(" signal SIGUSR1 /"), std::string::npos);
  auto paths = Fired(monitor_->Stdout(), "signal");
  ASSERT_EQ(paths.size(), 1u) << monitor_->Stdout();
  std::string gdb = cppdiag::testing::GdbBatch(kTarget, paths[0]);
  EXPECT_NE(gdb.find("Thread 6 "), std::string::npos) << gdb;
  EXPECT_NE(gdb.find(" main_read ("), std::string::npos) << gdb;
  EXPECT_TRUE(target_->running());
  std::ifstream status("/proc/" + std::to_string(target_->pid()) + "/status");
  std::string text((std::istreambuf_iterator<char>(status)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("TracerPid:\t0\n"), std::string::npos) << text;
}

// --exit on a program that segfaults with no handler: the dump shows the
// faulting frame and the process still dies of SIGSEGV.
TEST_F(MonitorTest, ExitDumpsASegfaultAndKeepsItsStatus) {
  StartTarget({"--crash", "--workers", "2", "--idle"});
  StartMonitor({"--exit"});
  target_->Signal(SIGUSR1);
  auto t = target_->Wait(seconds(60));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->signal, std::optional<int>(SIGSEGV)) << t->ToString();
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  EXPECT_NE(monitor_->Stdout().find(" exit signal SIGSEGV /"), std::string::npos);
  auto paths = Fired(monitor_->Stdout(), "exit");
  ASSERT_EQ(paths.size(), 1u) << monitor_->Stdout();
  std::string gdb = cppdiag::testing::GdbBatch(kTarget, paths[0]);
  EXPECT_NE(gdb.find(" crash_here ("), std::string::npos) << gdb;
}

// --exit on a program that calls exit(3): a dump, and the status stays 3.
TEST_F(MonitorTest, ExitDumpsANonZeroExitAndKeepsItsStatus) {
  StartTarget({"--exit-code", "3", "--workers", "2", "--idle"});
  StartMonitor({"--exit"});
  target_->Signal(SIGUSR1);
  auto t = target_->Wait(seconds(60));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->exit_code, std::optional<int>(3)) << t->ToString();
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  auto paths = Fired(monitor_->Stdout(), "exit status");
  ASSERT_EQ(paths.size(), 1u) << monitor_->Stdout();
  EXPECT_TRUE(fs::exists(paths[0]));
}

// A thread the target starts after the monitor attached (TRACECLONE) is in
// the --signal dump, blocked where it is.
TEST_F(MonitorTest, AThreadStartedAfterAttachingIsInTheDump) {
  StartTarget({"--late-thread", "--main-read", "--workers", "2", "--idle"});
  StartMonitor({"--signal", "SIGUSR1"});
  target_->Signal(SIGUSR2);
  ASSERT_TRUE(target_->WaitForOutput("LATE ", seconds(30))) << target_->Stdout();
  std::smatch m;
  const std::string out = target_->Stdout();
  ASSERT_TRUE(std::regex_search(out, m, std::regex("LATE ([0-9]+)"))) << out;
  const std::string late_tid = m[1];
  target_->Signal(SIGUSR1);
  EXPECT_EQ(MonitorExit(), 0) << monitor_->Stderr();
  auto paths = Fired(monitor_->Stdout(), "signal");
  ASSERT_EQ(paths.size(), 1u) << monitor_->Stdout();
  std::string gdb = cppdiag::testing::GdbBatch(kTarget, paths[0]);
  EXPECT_NE(gdb.find("(LWP " + late_tid + ")"), std::string::npos) << gdb;
  EXPECT_NE(gdb.find(" late_thread ("), std::string::npos) << gdb;
}

// Ctrl-C while the monitor traces: it detaches, and the target runs on
// untraced and still takes its signals.
TEST_F(MonitorTest, SigintWhileTracingDetaches) {
  StartTarget({"--main-read"});
  StartMonitor({"--signal", "SIGUSR2"});
  const std::string status_file = "/proc/" + std::to_string(target_->pid()) + "/status";
  auto tracer = [&] {
    std::ifstream in(status_file);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("TracerPid:", 0) == 0) return std::stoi(line.substr(10));
    }
    return -1;
  };
  EXPECT_EQ(tracer(), monitor_->pid());
  monitor_->Signal(SIGINT);
  EXPECT_EQ(MonitorExit(), 1);
  EXPECT_EQ(monitor_->Stderr(), "cppdiag: stopped with 0 of 1 dumps written: interrupted\n");
  EXPECT_EQ(tracer(), 0);
  target_->Signal(SIGUSR1);
  EXPECT_TRUE(target_->WaitForOutput("ALIVE 1", seconds(30))) << target_->Stdout();
  EXPECT_TRUE(target_->running());
}

}  // namespace
}  // namespace cppdiag
