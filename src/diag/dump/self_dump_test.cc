#include "diag/dump/self_dump.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <sys/procfs.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <latch>
#include <regex>
#include <thread>
#include <vector>

#include "common/io.h"
#include "common/proc.h"
#include "diag/dump/cppdiag_note.h"
#include "diag/dump/note_provider.h"
#include "diag/dump/testing/core_file_reader.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"

namespace cppdiag::dump {
namespace {

using ::cppdiag::testing::IsOk;

using ::cppdiag::testing::ScopedTempDir;

namespace fs = std::filesystem;

class SelfDumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SelfDumpConfig c;
    c.default_type = DumpType::kMini;
    c.name_template = dir_ + "/core.%p.%r";
    c.dump_dir = dir_;  // held open (O_PATH): a forked child must not keep it
    ASSERT_THAT(PrepareSelfDump(c), IsOk());
  }
  std::vector<std::string> Files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename());
    return out;
  }
  ScopedTempDir tmp_{"cppdiag-selfdump"};
  std::string dir_ = tmp_.path();
};

TEST_F(SelfDumpTest, WritesAnElfCoreOfThisProcessWithItsThreads) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::latch started(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] {
      started.count_down();
      char c;
      while (::read(fds[0], &c, 1) > 0) {
      }
    });
  }
  started.wait();
  // A value on this stack, below which the dump's own frames come and go.
  volatile char local[32];
  std::memcpy(const_cast<char*>(local), "stack-bytes-at-dump-time", 25);

  SelfDumpRequest req;
  req.reason = "unit-test";
  SelfDumpResult res;
  int err = WriteSelfDump(req, &res);
  ::close(fds[1]);
  for (auto& t : threads) t.join();
  ::close(fds[0]);
  ASSERT_EQ(err, 0) << res.failed_call;

  std::string expected = dir_ + "/core." + std::to_string(::getpid()) + ".unit-test";
  EXPECT_STREQ(res.path, expected.c_str());
  EXPECT_EQ(res.type, DumpType::kMini);
  EXPECT_EQ(res.threads, 3u);
  EXPECT_EQ(Files(), std::vector<std::string>{fs::path(expected).filename()});
  struct stat st;
  ASSERT_EQ(::stat(res.path, &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), res.size_bytes);

  auto core = testing::ParseCoreFile(res.path);
  ASSERT_THAT(core, IsOk());
  auto prstatus = core->NotesOfType("CORE", NT_PRSTATUS);
  ASSERT_EQ(prstatus.size(), 3u);
  elf_prstatus first;
  std::memcpy(&first, prstatus[0]->desc.data(), sizeof first);
  EXPECT_EQ(first.pr_pid, static_cast<pid_t>(::syscall(SYS_gettid)));
  EXPECT_EQ(first.pr_ppid, ::getppid());
  EXPECT_EQ(core->NotesOfType("CORE", NT_FILE).size(), 1u);
  EXPECT_EQ(core->NotesOfType("CORE", NT_AUXV).size(), 1u);
  EXPECT_TRUE(core->NotesOfType("CORE", NT_SIGINFO).empty());
  // The stack as it was when the threads stopped, not as the writer left it.
  auto bytes = core->ReadMemory(reinterpret_cast<uint64_t>(&local[0]), 25);
  ASSERT_TRUE(bytes);
  EXPECT_STREQ(reinterpret_cast<const char*>(bytes->data()), "stack-bytes-at-dump-time");
  auto info = core->NotesOfType(kCppdiagNoteName, kNtCppdiagInfo);
  ASSERT_EQ(info.size(), 1u);
  CppdiagInfo ci;
  ASSERT_TRUE(DecodeCppdiagInfo(info[0]->desc, &ci));
  EXPECT_STREQ(ci.reason, "unit-test");
  EXPECT_EQ(ci.threads, 3u);
  EXPECT_EQ(ci.dump_type, 1u);
}

TEST_F(SelfDumpTest, AnUnwritableDirectoryFailsAtOpenAndLeavesNothing) {
  SelfDumpRequest req;
  req.path = "/nonexistent-dir/core";
  SelfDumpResult res;
  EXPECT_EQ(WriteSelfDump(req, &res), ENOENT);
  EXPECT_STREQ(res.failed_call, "open");
  EXPECT_STREQ(res.path, "/nonexistent-dir/core");
}

TEST_F(SelfDumpTest, ATooLongPathIsRefused) {
  std::string path = dir_ + "/" + std::string(PATH_MAX, 'x');
  SelfDumpRequest req;
  req.path = path.c_str();
  SelfDumpResult res;
  EXPECT_EQ(WriteSelfDump(req, &res), ENAMETOOLONG);
  EXPECT_TRUE(Files().empty());
}

struct Reentry {
  int rc = -1;
  int calls = 0;
};

void ReenteringProvider(void* ctx, NoteOutput* out) {
  auto* r = static_cast<Reentry*>(ctx);
  if (r->calls++ == 0) {
    SelfDumpRequest req;
    req.path = "/tmp/never-written";
    SelfDumpResult res;
    r->rc = WriteSelfDump(req, &res);  // from inside a dump, on the dumping thread
  }
  out->Begin("TEST", 1, 4);
  out->Append("abcd", 4);
}

TEST_F(SelfDumpTest, ProvidersAddNotesAndCannotStartADumpFromInsideOne) {
  Reentry r;
  ASSERT_EQ(RegisterNoteProvider(&ReenteringProvider, &r), 0);
  SelfDumpRequest req;
  req.type = DumpType::kTriage;
  SelfDumpResult res;
  int err = WriteSelfDump(req, &res);
  UnregisterNoteProvider(&ReenteringProvider, &r);
  ASSERT_EQ(err, 0) << res.failed_call;
  EXPECT_EQ(r.rc, EDEADLK);
  EXPECT_EQ(::access("/tmp/never-written", F_OK), -1);
  auto core = testing::ParseCoreFile(res.path);
  ASSERT_THAT(core, IsOk());
  EXPECT_EQ(core->NotesOfType("TEST", 1).size(), 1u);
}

TEST_F(SelfDumpTest, ADumpNeverReplacesAnotherByAccident) {
  // The template has no %t: two dumps with one reason get one name.
  SelfDumpRequest req;
  req.type = DumpType::kTriage;
  req.reason = "twice";
  SelfDumpResult first, second;
  ASSERT_EQ(WriteSelfDump(req, &first), 0) << first.failed_call;
  ASSERT_EQ(WriteSelfDump(req, &second), 0) << second.failed_call;
  EXPECT_EQ(std::string(second.path), std::string(first.path) + ".1");
  EXPECT_EQ(Files().size(), 2u);

  // An explicit path that exists is replaced only when asked.
  SelfDumpRequest exact;
  exact.type = DumpType::kTriage;
  exact.path = first.path;
  SelfDumpResult res;
  EXPECT_EQ(WriteSelfDump(exact, &res), EEXIST);
  EXPECT_STREQ(res.failed_call, "link");  // the O_TMPFILE's linkat (it was "rename")
  exact.replace_existing = true;
  EXPECT_EQ(WriteSelfDump(exact, &res), 0) << res.failed_call;
  EXPECT_EQ(Files().size(), 2u) << "no temporary file left";
}

// What every descriptor of this process points at (readlink of /proc/self/fd/N).
std::vector<std::string> OpenFdTargets() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    char target[PATH_MAX];
    ssize_t n = ::readlink(e.path().c_str(), target, sizeof target);
    if (n > 0) out.emplace_back(target, static_cast<size_t>(n));
  }
  return out;
}

// Descriptors of /proc/<pid>/mem, pagemap, maps or task (`which` a regex of those).
std::vector<std::string> ProcHandles(pid_t pid, const std::string& which) {
  std::regex handle("^/proc/" + std::to_string(pid) + "/(" + which + ")$");
  std::vector<std::string> out;
  for (const auto& t : OpenFdTargets()) {
    if (std::regex_match(t, handle)) out.push_back(t);
  }
  return out;
}

TEST_F(SelfDumpTest, KeepsNoHandleOnItsMemoryBetweenDumps) {
  // A child that forks from us and drops privileges would inherit these.
  EXPECT_EQ(ProcHandles(::getpid(), "mem|pagemap"), std::vector<std::string>{})
      << "after PrepareSelfDump";
  for (SelfDumpMode mode : {SelfDumpMode::kSuspend, SelfDumpMode::kFork}) {
    SelfDumpRequest req;
    req.type = DumpType::kTriage;
    req.mode = mode;
    SelfDumpResult res;
    ASSERT_EQ(WriteSelfDump(req, &res), 0) << res.failed_call;
    EXPECT_EQ(ProcHandles(::getpid(), "mem|pagemap"), std::vector<std::string>{})
        << "after a dump, " << SelfDumpModeName(mode);
  }
}

// A process forked while a dump is in flight in another of its threads: the
// progress callback of a fork-mode dump runs with the dump lock held and the
// dump's file open, and forks. The child, as the runtime's atfork handler
// will, forgets the dump state, then dumps itself.
struct ForkDuringDump {
  pid_t parent = 0;
  std::string dir;
  bool forked = false;
  std::string child_report;
  int child_status = -1;
};

void ForkFromProgress(void* context, uint64_t, uint64_t) {
  auto* f = static_cast<ForkDuringDump*>(context);
  if (f->forked) return;
  f->forked = true;
  int p[2];
  if (::pipe(p) != 0) return;
  pid_t child = ::fork();
  if (child == 0) {
    ::close(p[0]);
    ForgetSelfDumpStateInForkedChild();
    std::string report;
    for (const auto& t : ProcHandles(f->parent, "mem|pagemap|maps|task")) report += t + " ";
    for (const auto& t : OpenFdTargets()) {
      if (t.rfind(f->dir, 0) == 0) report += t + " ";  // the dump file or its directory
    }
    SelfDumpRequest req;
    req.type = DumpType::kTriage;
    req.reason = "child";
    req.mode = SelfDumpMode::kFork;
    SelfDumpResult res;
    int err = WriteSelfDump(req, &res);
    report += "|" + std::to_string(err) + " " + res.failed_call + "|" + res.path;
    (void)WriteAllRaw(p[1], report.data(), report.size());
    ::_exit(0);
  }
  ::close(p[1]);
  char buf[4096];
  ssize_t n;
  while ((n = HANDLE_EINTR(::read(p[0], buf, sizeof buf))) > 0) {
    f->child_report.append(buf, static_cast<size_t>(n));
  }
  ::close(p[0]);
  ::waitpid(child, &f->child_status, 0);
}

TEST_F(SelfDumpTest, AForkedChildForgetsTheDumpStateAndDumpsItself) {
  std::vector<char> heap(16 << 20, 'x');  // long enough for a progress call
  ForkDuringDump f{::getpid(), dir_};
  std::string path = dir_ + "/parent.core";
  SelfDumpRequest req;
  req.type = DumpType::kHeap;
  req.path = path.c_str();
  req.mode = SelfDumpMode::kFork;
  req.progress = &ForkFromProgress;
  req.progress_context = &f;
  req.progress_interval_ms = 1;
  SelfDumpResult res;
  ASSERT_EQ(WriteSelfDump(req, &res), 0) << res.failed_call;
  ASSERT_TRUE(f.forked) << "the dump ended before its first progress call";
  ASSERT_TRUE(WIFEXITED(f.child_status)) << f.child_status;
  // "<inherited descriptors>|<err> <failed call>|<path>"
  size_t bar = f.child_report.find('|');
  size_t bar2 = f.child_report.find('|', bar + 1);
  ASSERT_NE(bar2, std::string::npos) << f.child_report;
  EXPECT_EQ(f.child_report.substr(0, bar), "")
      << "descriptors the child inherited from the parent's dump state";
  EXPECT_EQ(f.child_report.substr(bar + 1, bar2 - bar - 1), "0 ") << "the child's dump";
  std::string child_path = f.child_report.substr(bar2 + 1);
  EXPECT_TRUE(testing::ParseCoreFile(child_path).ok()) << child_path;
  // The parent's dump went on undisturbed, and the child's is there too.
  auto core = testing::ParseCoreFile(path);
  EXPECT_THAT(core, IsOk());
  EXPECT_EQ(Files().size(), 2u);
}

// A crash in a process out of descriptors (EMFILE) still leaves its dump:
// the dump state holds a reserve for it. In a child, whose table we fill.
TEST_F(SelfDumpTest, AProcessOutOfDescriptorsStillDumps) {
  for (SelfDumpMode mode : {SelfDumpMode::kSuspend, SelfDumpMode::kFork}) {
    std::string path = dir_ + "/emfile.core." + SelfDumpModeName(mode);
    pid_t child = ::fork();
    if (child == 0) {
      rlimit few{256, 256};
      if (::setrlimit(RLIMIT_NOFILE, &few) != 0) ::_exit(2);
      while (::dup(0) >= 0) {
      }
      if (errno != EMFILE) ::_exit(2);
      SelfDumpRequest req;
      req.type = DumpType::kMini;
      req.path = path.c_str();
      req.mode = mode;
      SelfDumpResult res;
      ::_exit(WriteSelfDump(req, &res) == 0 ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << SelfDumpModeName(mode) << " " << status;
    EXPECT_TRUE(testing::ParseCoreFile(path).ok()) << path;
  }
}

// A note provider that, in its writing pass (the dump file is open, the
// headers are out), says so on `started_fd` and then waits for ever: the
// writer is held in the middle of the dump.
struct Hold {
  int started_fd = -1;
  int wait_fd = -1;
  int calls = 0;
};

void HoldingProvider(void* context, NoteOutput* out) {
  auto* h = static_cast<Hold*>(context);
  if (h->calls++ == 1) {
    char c = 1;
    (void)::write(h->started_fd, &c, 1);
    (void)HANDLE_EINTR(::read(h->wait_fd, &c, 1));
  }
  out->Begin("TEST", 1, 4);
  out->Append("abcd", 4);
}

// A target killed (OOM killer, liveness probe) in the middle of writing its
// dump leaves nothing in the dump directory, in either mode.
class KilledMidDumpTest : public SelfDumpTest,
                          public ::testing::WithParamInterface<SelfDumpMode> {};

TEST_P(KilledMidDumpTest, LeavesNoFileAtAll) {
  int started[2], wait[2];
  ASSERT_EQ(::pipe(started), 0);
  ASSERT_EQ(::pipe(wait), 0);
  std::string path = dir_ + "/killed.core";
  pid_t target = ::fork();
  if (target == 0) {
    Hold hold{started[1], wait[0]};
    RegisterNoteProvider(&HoldingProvider, &hold);
    SelfDumpRequest req;
    req.type = DumpType::kHeap;
    req.path = path.c_str();
    req.mode = GetParam();
    SelfDumpResult res;
    WriteSelfDump(req, &res);
    ::_exit(3);  // not reached: the writer is held
  }
  ::close(started[1]);
  char c = 0;
  ASSERT_EQ(HANDLE_EINTR(::read(started[0], &c, 1)), 1) << "the target died before writing";
  ASSERT_EQ(::kill(target, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(target, &status, 0), target);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  ::close(started[0]);
  ::close(wait[0]);
  ::close(wait[1]);
  EXPECT_EQ(Files(), std::vector<std::string>{}) << "a half-written dump is visible";
}

INSTANTIATE_TEST_SUITE_P(Modes, KilledMidDumpTest,
                         ::testing::Values(SelfDumpMode::kSuspend, SelfDumpMode::kFork),
                         [](const ::testing::TestParamInfo<SelfDumpMode>& p) {
                           return std::string(SelfDumpModeName(p.param));
                         });

TEST_F(SelfDumpTest, ExpandsTheTemplateOnRequest) {
  char out[PATH_MAX];
  ASSERT_EQ(ExpandSelfDumpName("crash", out, sizeof out), 0);
  EXPECT_EQ(std::string(out), dir_ + "/core." + std::to_string(::getpid()) + ".crash");
  EXPECT_EQ(SelfDumpDefaultType(), DumpType::kMini);
}

}  // namespace
}  // namespace cppdiag::dump
