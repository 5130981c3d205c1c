// `cppdiag dump collect --ptrace` end to end, on ptrace_target (no
// libcppdiag): the cores open in gdb and eu-stack with every thread's stack,
// MADV_DONTDUMP memory is absent, the target runs on after the dump, and
// refusals (a second tracer, a process that is gone, no privilege, seccomp)
// are one-line errors. Synchronisation is on the target's output.
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "diag/dump/ptrace_attach.h"
#include "diag/dump/ptrace_dump.h"
#include "support/scoped_cgroup.h"
#include "support/subprocess.h"

namespace cppdiag::dump {
namespace {

using cppdiag::testing::Cppdiag;
using cppdiag::testing::Subprocess;
using cppdiag::testing::SubprocessOptions;
using std::chrono::seconds;
namespace fs = std::filesystem;

const std::string kTarget = PTRACE_TARGET;

int ReadyThreads(const std::string& out) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(out, m, std::regex(R"(READY pid=\d+ threads=(\d+))"))) << out;
  return m.empty() ? -1 : std::stoi(m[1]);
}

int GdbThreadCount(const std::string& gdb) {
  static const std::regex kRow(R"(^\*?\s+\d+\s+(Thread 0x[0-9a-f]+ )?\(?LWP \d+)");
  int n = 0;
  std::istringstream in(gdb);
  for (std::string line; std::getline(in, line);) n += std::regex_search(line, kRow);
  return n;
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Frames ("#3  0x... in worker (arg=...)" in gdb, "#3 0x... worker" in
// eu-stack) that are in function `fn`.
int Frames(const std::string& text, const std::string& fn) {
  static const std::regex kFrame(R"(^#\d+\s)");
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!std::regex_search(line, kFrame)) continue;
    n += line.find(" " + fn + " (") != std::string::npos ||
         (line.size() > fn.size() &&
          line.compare(line.size() - fn.size() - 1, fn.size() + 1, " " + fn) == 0);
  }
  return n;
}

bool FileContains(const std::string& path, const std::string& needle) {
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return data.find(needle) != std::string::npos;
}

class PtraceDumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ptrace-dump-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0777);  // the unprivileged run writes here too
  }
  void TearDown() override {
    target_.reset();
    fs::remove_all(dir_);
  }
  void Start(std::vector<std::string> args = {}) {
    args.insert(args.begin(), kTarget);
    target_.emplace(SubprocessOptions{args});
    ASSERT_TRUE(target_->WaitForOutput("READY", seconds(30))) << target_->Stderr();
    threads_ = ReadyThreads(target_->Stdout());
  }
  std::string Pid() const { return std::to_string(target_->pid()); }
  // The target answers SIGUSR1 with "ALIVE <n>": it runs on after the dump.
  void ExpectAlive(int n) {
    target_->Signal(SIGUSR1);
    EXPECT_TRUE(target_->WaitForOutput("ALIVE " + std::to_string(n), seconds(30)))
        << target_->Stdout();
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  cppdiag::testing::CliRun Dump(const std::string& core, const std::string& type,
                                const std::string& snapshot = "stop") {
    return Cppdiag({"dump", "collect", "--ptrace", "-p", Pid(), "-o", core, "--type", type,
                    "--snapshot", snapshot});
  }

  std::optional<Subprocess> target_;
  std::string dir_;
  int threads_ = 0;
};

// Every thread's stack, with the functions each thread is in, as gdb and
// eu-stack show them; the file is mode 0600; the target runs on.
TEST_F(PtraceDumpTest, StopModeCoreShowsEveryThreadInGdbAndEuStack) {
  Start();
  const std::string core = Path("core.full");
  auto run = Dump(core, "full");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("Writing full dump to " + core), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("Complete: "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("stop)"), std::string::npos) << run.out;
  struct stat st {};
  ASSERT_EQ(::stat(core.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  std::string gdb = cppdiag::testing::GdbBatch(kTarget, core);
  EXPECT_EQ(GdbThreadCount(gdb), threads_) << gdb;
  EXPECT_EQ(Frames(gdb, "wait_on_pipe"), 4) << gdb;
  EXPECT_EQ(Frames(gdb, "spin_forever"), 1) << gdb;
  EXPECT_EQ(Frames(gdb, "main_wait"), 1) << gdb;
  EXPECT_EQ(Frames(gdb, "worker"), 4) << gdb;

  std::string eu = cppdiag::testing::RunToCompletion(
      {"/usr/bin/eu-stack", "--core=" + core, "--executable=" + kTarget});
  EXPECT_EQ(Count(eu, "TID "), threads_) << eu;
  EXPECT_EQ(Frames(eu, "wait_on_pipe"), 4) << eu;
  EXPECT_EQ(Frames(eu, "spin_forever"), 1) << eu;
  EXPECT_EQ(Frames(eu, "main_wait"), 1) << eu;
  ExpectAlive(1);
}

// Each dump type: every thread's backtrace still reaches its function (the
// stacks are in every type); MADV_DONTDUMP memory is in none, as in the
// kernel's cores, and the plain anonymous region is where the type stores it.
TEST_F(PtraceDumpTest, EveryTypeHasTheStacksAndNoDontDumpMemory) {
  Start();
  int alive = 0;
  for (std::string type : {"full", "heap", "mini", "triage"}) {
    SCOPED_TRACE(type);
    const std::string core = Path("core." + type);
    auto run = Dump(core, type);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    std::string gdb = cppdiag::testing::GdbBatch(kTarget, core);
    EXPECT_EQ(GdbThreadCount(gdb), threads_) << gdb;
    EXPECT_EQ(Frames(gdb, "wait_on_pipe"), 4) << gdb;
    EXPECT_EQ(Frames(gdb, "main_wait"), 1) << gdb;
    EXPECT_FALSE(FileContains(core, "PTRACE-DONTDUMP-MARKER"));
    bool anon_stored = type == "full" || type == "heap";
    EXPECT_EQ(FileContains(core, "PTRACE-KEEP-MARKER"), anon_stored);
    ExpectAlive(++alive);
  }
}

// /proc/<pid>/mem gives the same core as process_vm_readv.
TEST_F(PtraceDumpTest, ProcMemFallbackReadsTheSameMemory) {
  Start();
  PtraceDumpOptions o{.pid = target_->pid(),
                      .path = Path("core.mem"),
                      .type = DumpType::kHeap,
                      .mode = PtraceSnapshotMode::kStop,
                      .force_proc_mem = true};
  auto report = WritePtraceDump(o);
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_TRUE(report->used_proc_mem);
  EXPECT_TRUE(FileContains(o.path, "PTRACE-KEEP-MARKER"));
  EXPECT_FALSE(FileContains(o.path, "PTRACE-DONTDUMP-MARKER"));
  std::string gdb = cppdiag::testing::GdbBatch(kTarget, o.path);
  EXPECT_EQ(Frames(gdb, "wait_on_pipe"), 4) << gdb;
  ExpectAlive(1);
}

// Threads that start and exit while the tracer attaches: every dump
// completes, and the target goes on.
TEST_F(PtraceDumpTest, ThreadsStartingAndExitingDuringTheAttach) {
  Start({"--churn"});
  for (int i = 0; i < 5; ++i) {
    auto run = Dump(Path("core.churn" + std::to_string(i)), "mini");
    ASSERT_EQ(run.exit_code, 0) << run.err;
    std::string gdb = cppdiag::testing::GdbBatch(kTarget, Path("core.churn" + std::to_string(i)));
    EXPECT_EQ(Frames(gdb, "wait_on_pipe"), 4) << gdb;
    EXPECT_GE(GdbThreadCount(gdb), threads_) << gdb;
  }
  ExpectAlive(1);
}

// The figures of the "Complete: <size> in <ms> ms (target paused <ms> ms, <mode>...)" line.
struct Complete {
  double total_ms = -1, pause_ms = -1;
  std::string mode;
};
Complete ParseComplete(const std::string& out) {
  std::smatch m;
  Complete c;
  if (std::regex_search(
          out, m, std::regex(R"(Complete: .* in (\d+) ms \(target paused ([0-9.]+) ms, (\w+))"))) {
    c.total_ms = std::stod(m[1]);
    c.pause_ms = std::stod(m[2]);
    c.mode = m[3];
  }
  return c;
}

// Threads of /proc/<pid>/task.
std::vector<std::string> Tids(pid_t pid) {
  std::vector<std::string> tids;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task"))
    tids.push_back(e.path().filename());
  return tids;
}

// The children of every thread of `pid` (the injected fork's child must be
// gone, zombie included).
std::string Children(pid_t pid) {
  std::string all;
  for (const std::string& tid : Tids(pid)) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + tid + "/children");
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    all += s;
  }
  return all;
}

// Fork mode: the target pauses for the capture and the injected fork only,
// far less than the write (the reported figures), the core has the parent's
// threads (its tids, its functions), no child is left, the target runs on.
TEST_F(PtraceDumpTest, ForkModePausesForTheForkOnlyAndTheCoreHasTheParentsThreads) {
  Start({"--fill-mb", "256"});
  const std::string core = Path("core.fork");
  auto run = Dump(core, "full", "fork");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  Complete c = ParseComplete(run.out);
  EXPECT_EQ(c.mode, "fork") << run.out;
  ASSERT_GT(c.pause_ms, 0) << run.out;
  // 256 MiB to write against a fork of it (its page tables): the target was
  // let go long before the write ended. (A factor of 10 failed under load,
  // 41 ms against 330 ms: both figures move with the machine.)
  EXPECT_LT(c.pause_ms * 3, c.total_ms) << run.out;
  EXPECT_EQ(Children(target_->pid()), "");

  std::string gdb = cppdiag::testing::GdbBatch(kTarget, core);
  EXPECT_EQ(GdbThreadCount(gdb), threads_) << gdb;
  for (const std::string& tid : Tids(target_->pid()))
    EXPECT_NE(gdb.find("LWP " + tid + ")"), std::string::npos) << tid << "\n" << gdb;
  EXPECT_EQ(Frames(gdb, "wait_on_pipe"), 4) << gdb;
  EXPECT_EQ(Frames(gdb, "spin_forever"), 1) << gdb;
  EXPECT_EQ(Frames(gdb, "main_wait"), 1) << gdb;
  EXPECT_FALSE(FileContains(core, "PTRACE-DONTDUMP-MARKER"));
  EXPECT_TRUE(FileContains(core, "PTRACE-KEEP-MARKER"));
  // The main thread forked for us, interrupted in sigwait: it still waits.
  ExpectAlive(1);
  ExpectAlive(2);
}

// The thread made to fork was in a syscall: it is put back so that the
// syscall resumes as the kernel would have resumed it (read: restarted;
// clock_nanosleep: restart_syscall), not returning the kernel's internal
// -ERESTART* codes to the program.
TEST_F(PtraceDumpTest, TheForkingThreadsInterruptedSyscallResumes) {
  for (std::string mode : {"--main-read", "--main-sleep"}) {
    SCOPED_TRACE(mode);
    Start({mode});
    for (int i = 1; i <= 3; ++i) {
      auto run = Dump(Path("core" + mode + std::to_string(i)), "mini", "fork");
      ASSERT_EQ(run.exit_code, 0) << run.err;
      EXPECT_EQ(ParseComplete(run.out).mode, "fork") << run.out;
      EXPECT_TRUE(target_->running()) << target_->Stdout();
      ExpectAlive(i);
    }
    std::string gdb = cppdiag::testing::GdbBatch(kTarget, Path("core" + mode + "3"));
    EXPECT_EQ(Frames(gdb, mode == "--main-read" ? "main_read" : "main_sleep"), 1) << gdb;
    EXPECT_EQ(target_->Stdout().find("MAIN FAILED"), std::string::npos) << target_->Stdout();
  }
}

// The default (auto) forks when there is no limit, and stops instead in a
// cgroup with too little room for the copy-on-write copies.
TEST_F(PtraceDumpTest, AutoForksWithRoomAndStopsInATightCgroup) {
  Start();
  auto roomy = Cppdiag({"dump", "collect", "--ptrace", "-p", Pid(), "-o", Path("core.auto")});
  ASSERT_EQ(roomy.exit_code, 0) << roomy.err;
  EXPECT_EQ(ParseComplete(roomy.out).mode, "fork") << roomy.out;
  target_.reset();

  // 160 MiB of anonymous memory under a 224 MiB limit: less than RssAnon/2 free.
  cppdiag::testing::ScopedCgroup cg(224u << 20);
  if (!cg.ok()) GTEST_SKIP() << cg.why_not();
  target_.emplace(
      SubprocessOptions{.argv = {kTarget, "--fill-mb", "160"}, .cgroup_procs = cg.procs_file()});
  ASSERT_TRUE(target_->WaitForOutput("READY", seconds(60))) << target_->Stderr();
  auto tight = Cppdiag(
      {"dump", "collect", "--ptrace", "-p", Pid(), "-o", Path("core.tight"), "--type", "mini"});
  ASSERT_EQ(tight.exit_code, 0) << tight.err;
  EXPECT_EQ(ParseComplete(tight.out).mode, "stop") << tight.out;
  EXPECT_NE(tight.out.find(" < "), std::string::npos) << tight.out;
  EXPECT_EQ(cg.oom_kills(), 0u);
  ExpectAlive(1);
}

// The frozen child shares the target's pages; reading them must not copy
// them (a read-only pin of a shared anonymous page would: process_vm_readv).
// The cgroup's peak over the dump stays far below the target's 256 MiB.
TEST_F(PtraceDumpTest, ForkChildCopiesNoneOfTheTargetsMemory) {
  cppdiag::testing::ScopedCgroup cg(0);
  if (!cg.ok()) GTEST_SKIP() << cg.why_not();
  const std::string peak =
      cg.dir() + (cg.version() == 1 ? "/memory.max_usage_in_bytes" : "/memory.peak");
  const std::string usage =
      cg.dir() + (cg.version() == 1 ? "/memory.usage_in_bytes" : "/memory.current");
  target_.emplace(
      SubprocessOptions{.argv = {kTarget, "--fill-mb", "256"}, .cgroup_procs = cg.procs_file()});
  ASSERT_TRUE(target_->WaitForOutput("READY", seconds(60))) << target_->Stderr();
  threads_ = ReadyThreads(target_->Stdout());
  {
    std::ofstream reset(peak);
    reset << "0\n";
    if (!reset.flush()) GTEST_SKIP() << "cannot reset " << peak;
  }
  uint64_t before = std::stoull(cppdiag::testing::ReadAll(usage));
  auto run = Dump(Path("core.cow"), "full", "fork");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(ParseComplete(run.out).mode, "fork") << run.out;
  uint64_t after = std::stoull(cppdiag::testing::ReadAll(peak));
  EXPECT_LT(after - std::min(after, before), 32u << 20)
      << "peak " << after << ", before " << before;
  ExpectAlive(1);
}

// Threads starting and exiting while a thread is made to fork.
TEST_F(PtraceDumpTest, ForkWhileThreadsStartAndExit) {
  Start({"--churn"});
  for (int i = 0; i < 5; ++i) {
    const std::string core = Path("core.fchurn" + std::to_string(i));
    auto run = Dump(core, "mini", "fork");
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(ParseComplete(run.out).mode, "fork") << run.out;
    std::string gdb = cppdiag::testing::GdbBatch(kTarget, core);
    EXPECT_EQ(Frames(gdb, "wait_on_pipe"), 4) << gdb;
  }
  EXPECT_EQ(Children(target_->pid()), "");
  ExpectAlive(1);
}

// For each "Thread N (... LWP tid)" block of gdb's "thread apply all bt",
// the function of each frame, in order: "tid: f0 f1 f2 ...", sorted by tid.
std::vector<std::string> FunctionsByThread(const std::string& gdb) {
  std::vector<std::string> rows;
  static const std::regex kThread(R"(^Thread \d+ .*LWP (\d+)\))");
  static const std::regex kFrame(R"(^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \()");
  std::istringstream in(gdb);
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_search(line, m, kThread)) {
      rows.push_back(m[1].str() + ":");
    } else if (!rows.empty() && std::regex_search(line, m, kFrame)) {
      rows.back() += " " + m[1].str();
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

// The same stopped state dumped by cppdiag and by gdb's gcore: every
// thread's backtrace (function by function) is the same in both cores.
TEST_F(PtraceDumpTest, BacktracesEqualGcoresOfTheSameStoppedState) {
  Start();
  target_->Signal(SIGSTOP);
  ASSERT_TRUE(cppdiag::testing::PollUntil(
      [&] {
        std::ifstream in("/proc/" + Pid() + "/stat");
        std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        size_t close = stat.rfind(')');
        return close != std::string::npos && stat.compare(close + 2, 1, "T") == 0;
      },
      seconds(30)));
  auto run = Dump(Path("core.ours"), "full");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::string gcore =
      cppdiag::testing::RunToCompletion({"/usr/bin/gcore", "-o", Path("core.gcore"), Pid()});
  const std::string gcore_core = Path("core.gcore") + "." + Pid();
  ASSERT_TRUE(fs::exists(gcore_core)) << gcore;
  target_->Signal(SIGCONT);
  auto ours = FunctionsByThread(cppdiag::testing::GdbBatch(kTarget, Path("core.ours")));
  auto theirs = FunctionsByThread(cppdiag::testing::GdbBatch(kTarget, gcore_core));
  ASSERT_EQ(ours.size(), static_cast<size_t>(threads_));
  EXPECT_EQ(ours, theirs);
  int with_worker = 0;
  for (const std::string& row : ours)
    with_worker += row.find(" wait_on_pipe worker ") != std::string::npos;
  EXPECT_EQ(with_worker, 4) << ::testing::PrintToString(ours);
  ExpectAlive(1);
}

// SIGINT during the write: the tool stops, lets the target go, leaves no
// file, and says so in one line. (1 GiB to write: the signal comes while it
// writes, once it has said "Writing".)
TEST_F(PtraceDumpTest, SigintDuringTheWriteLeavesNoFileAndTheTargetRuns) {
  Start({"--fill-mb", "1024"});
  const std::string core = Path("core.sigint");
  Subprocess cli(SubprocessOptions{.argv = {cppdiag::testing::BuiltBinary("cppdiag"), "dump",
                                            "collect", "--ptrace", "-p", Pid(), "-o", core,
                                            "--type", "full", "--snapshot", "stop"}});
  ASSERT_TRUE(cli.WaitForOutput("Writing full dump", seconds(60))) << cli.Stderr();
  cli.Signal(SIGINT);
  auto end = cli.Wait(seconds(60));
  ASSERT_TRUE(end.has_value());
  ASSERT_TRUE(end->exit_code.has_value()) << end->ToString();
  if (*end->exit_code == 0) GTEST_SKIP() << "the dump was complete before the signal";
  EXPECT_EQ(*end->exit_code, 1);
  EXPECT_EQ(cli.Stderr(), "cppdiag: interrupted: no dump written\n");
  EXPECT_FALSE(fs::exists(core));
  std::ifstream status("/proc/" + Pid() + "/status");
  std::string text((std::istreambuf_iterator<char>(status)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("TracerPid:\t0\n"), std::string::npos) << text;
  ExpectAlive(1);
}

// A second tracer: one line naming it, no file, and the target unharmed.
TEST_F(PtraceDumpTest, AlreadyTracedIsOneLineError) {
  Start();
  pid_t pid = target_->pid();
  ASSERT_EQ(::ptrace(PTRACE_SEIZE, pid, nullptr, nullptr), 0) << std::strerror(errno);
  auto run = Dump(Path("core.traced"), "mini");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("process " + Pid() + " is already traced by process " +
                         std::to_string(::getpid())),
            std::string::npos)
      << run.err;
  EXPECT_EQ(Count(run.err, "\n"), 1) << run.err;
  EXPECT_FALSE(fs::exists(Path("core.traced")));
  // Let it go: a seized tracee is detached from a stop.
  ASSERT_EQ(::ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, __WALL), pid);
  ASSERT_EQ(::ptrace(PTRACE_DETACH, pid, nullptr, nullptr), 0);
  ExpectAlive(1);
}

TEST_F(PtraceDumpTest, ProcessGoneIsOneLineError) {
  pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(gone, nullptr, 0), gone);
  auto run =
      Cppdiag({"dump", "collect", "--ptrace", "-p", std::to_string(gone), "-o", Path("core.gone")});
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(run.err, "cppdiag: process " + std::to_string(gone) + " does not exist (or exited)\n");
}

// Without CAP_SYS_PTRACE, a process of another uid is refused, and said so.
TEST_F(PtraceDumpTest, NoCapabilityForAnotherUidIsOneLineError) {
  Start();
  std::string cli = cppdiag::testing::StagedBinary("cppdiag");
  std::string out = cppdiag::testing::RunToCompletion(
      {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
       "--bounding-set=-all", cli, "dump", "collect", "--ptrace", "-p", Pid(), "-o",
       Path("core.nocap")});
  EXPECT_NE(out.find("cppdiag: ptrace of process " + Pid() +
                     " refused: it belongs to uid 0 and cppdiag (uid 65534) lacks "
                     "CAP_SYS_PTRACE"),
            std::string::npos)
      << out;
  EXPECT_FALSE(fs::exists(Path("core.nocap")));
  ExpectAlive(1);
}

// A seccomp filter that refuses ptrace (as a container runtime's profile
// does without SYS_PTRACE).
TEST_F(PtraceDumpTest, SeccompRefusalIsOneLineError) {
  Start();
  std::string cli = cppdiag::testing::BuiltBinary("cppdiag");
  std::string err_path = Path("seccomp.err");
  pid_t child = ::fork();
  if (child == 0) {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{sizeof filter / sizeof filter[0], filter};
    int fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ::dup2(fd, 2) < 0) ::_exit(100);
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
      ::_exit(101);
    }
    std::string pid = Pid(), out = Path("core.seccomp");
    ::execl(cli.c_str(), cli.c_str(), "dump", "collect", "--ptrace", "-p", pid.c_str(), "-o",
            out.c_str(), static_cast<char*>(nullptr));
    ::_exit(102);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::ifstream in(err_path);
  std::string err((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(err, "cppdiag: ptrace of process " + Pid() +
                     " refused: a seccomp filter forbids ptrace in this container (add the "
                     "SYS_PTRACE capability, or a profile that allows ptrace)\n");
  ExpectAlive(1);
}

// The reasons read from /proc, on a fixture tree: Yama's scope without the
// capability, and scope 3.
TEST(DiagnosePtraceRefusalTest, YamaScope) {
  char tmpl[] = "/tmp/ptrace-proc-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string root = tmpl;
  fs::create_directories(root + "/42");
  fs::create_directories(root + "/self");
  fs::create_directories(root + "/sys/kernel/yama");
  auto write = [](const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  };
  write(root + "/42/status", "Name:\tapp\nUid:\t1000\t1000\t1000\t1000\nTracerPid:\t0\n");
  write(root + "/self/status", "Name:\tcppdiag\nCapEff:\t0000000000000000\nSeccomp:\t0\n");
  write(root + "/sys/kernel/yama/ptrace_scope", "1\n");
  EXPECT_EQ(DiagnosePtraceRefusal(42, EPERM, root),
            "ptrace of process 42 refused: Yama ptrace_scope is 1 and cppdiag lacks "
            "CAP_SYS_PTRACE (run it as root or with the SYS_PTRACE capability)");
  write(root + "/sys/kernel/yama/ptrace_scope", "3\n");
  EXPECT_EQ(DiagnosePtraceRefusal(42, EPERM, root),
            "ptrace of process 42 refused: Yama ptrace_scope is 3 (ptrace disabled on this "
            "host)");
  // With the capability, scope 1 is no obstacle: what is left is said as is.
  write(root + "/sys/kernel/yama/ptrace_scope", "1\n");
  write(root + "/self/status", "Name:\tcppdiag\nCapEff:\t0000000000080000\nSeccomp:\t0\n");
  EXPECT_EQ(DiagnosePtraceRefusal(42, EPERM, root),
            "ptrace of process 42 refused: Operation not permitted");
  fs::remove_all(root);
}

}  // namespace
}  // namespace cppdiag::dump
