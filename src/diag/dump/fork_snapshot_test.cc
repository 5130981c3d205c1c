#include "diag/dump/fork_snapshot.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <sys/procfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/io.h"
#include "diag/dump/elf_core_writer.h"
#include "diag/dump/note_provider.h"
#include "diag/dump/self_dump.h"
#include "diag/dump/testing/core_file_reader.h"
#include "diag/dump/testing/typical_process.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"

namespace cppdiag::dump {
namespace {

using ::cppdiag::testing::IsOk;

using ::cppdiag::testing::ScopedTempDir;

namespace fs = std::filesystem;
constexpr uint64_t kMiB = 1 << 20;

TEST(ChooseForkForHeadroomTest, ForksWithoutALimit) {
  char reason[128];
  EXPECT_TRUE(ChooseForkForHeadroom(kUnknownBytes, 5 * kMiB, 1024 * kMiB, reason, sizeof reason));
  EXPECT_STREQ(reason, "no cgroup memory limit");
}

TEST(ChooseForkForHeadroomTest, NeedsHalfTheAnonymousMemoryAndAtLeast64MiB) {
  char reason[128];
  // 1 GiB anonymous: 512 MiB of headroom needed.
  EXPECT_TRUE(ChooseForkForHeadroom(2048 * kMiB, 1536 * kMiB, 1024 * kMiB, reason, sizeof reason));
  EXPECT_STREQ(reason, "cgroup headroom 512 MiB >= 512 MiB needed for copy-on-write");
  EXPECT_FALSE(ChooseForkForHeadroom(2048 * kMiB, 1600 * kMiB, 1024 * kMiB, reason, sizeof reason));
  EXPECT_STREQ(reason, "cgroup headroom 448 MiB < 512 MiB needed for copy-on-write");
  // A small process still needs the 64 MiB floor.
  EXPECT_FALSE(ChooseForkForHeadroom(100 * kMiB, 50 * kMiB, 10 * kMiB, reason, sizeof reason));
  EXPECT_STREQ(reason, "cgroup headroom 50 MiB < 64 MiB needed for copy-on-write");
  // Over the limit (usage can exceed it briefly): no headroom.
  EXPECT_FALSE(ChooseForkForHeadroom(100 * kMiB, 120 * kMiB, 10 * kMiB, reason, sizeof reason));
  // Usage unknown under a limit: do not bet.
  EXPECT_FALSE(ChooseForkForHeadroom(100 * kMiB, kUnknownBytes, 0, reason, sizeof reason));
}

TEST(ChooseForkForHeadroomTest, TheReasonIsCutToItsBuffer) {
  char reason[10];
  ChooseForkForHeadroom(100 * kMiB, 50 * kMiB, 0, reason, sizeof reason);
  EXPECT_EQ(std::strlen(reason), 9u);
}

TEST(ProgressSinkTest, LearnsTheTotalFromTheProgramHeadersAndEndsAtIt) {
  auto snapshot = testing::MakeTypicalProcess();
  auto buffers = CoreWriterBuffersOwner::Allocate(4096, 4096, 1 << 20);
  ASSERT_THAT(buffers, IsOk());
  ForkReport report;
  MemorySink inner;
  ProgressSink sink(&inner, &report);
  CoreWriteStats stats;
  ASSERT_EQ(WriteElfCore(*snapshot, {.type = DumpType::kFull}, buffers->get(), &sink, &stats), 0);
  EXPECT_EQ(report.bytes_total.load(), stats.file_size);
  EXPECT_EQ(report.bytes_written.load(), stats.file_size);
  EXPECT_GT(stats.file_size, 0u);
}

TEST(ProgressSinkTest, KnowsTheTotalBeforeTheDataIsWritten) {
  auto snapshot = testing::MakeTypicalProcess();
  auto buffers = CoreWriterBuffersOwner::Allocate(4096, 4096, 1 << 20);
  ASSERT_THAT(buffers, IsOk());
  ForkReport report;
  MemorySink inner(/*limit=*/8192);  // fails after the headers
  ProgressSink sink(&inner, &report);
  CoreWriteStats stats;
  EXPECT_EQ(WriteElfCore(*snapshot, {.type = DumpType::kFull}, buffers->get(), &sink, &stats),
            ENOSPC);
  EXPECT_GT(report.bytes_total.load(), 8192u);
  EXPECT_LE(report.bytes_written.load(), 8192u);
}

TEST(ParentIdentitySnapshotTest, ReportsTheGivenPidAndPpid) {
  auto snapshot = testing::MakeTypicalProcess();
  ParentIdentitySnapshot s(*snapshot, 1234, 1);
  EXPECT_EQ(s.process().pid, 1234);
  EXPECT_EQ(s.process().ppid, 1);
  EXPECT_EQ(s.process().uid, snapshot->process().uid);
  EXPECT_EQ(s.thread_count(), snapshot->thread_count());
  EXPECT_EQ(s.mapping_count(), snapshot->mapping_count());
}

TEST(ReadSelfRssAnonTest, ReadsThisProcess) {
  uint64_t anon = ReadSelfRssAnon();
  ASSERT_NE(anon, kUnknownBytes);
  EXPECT_GT(anon, 0u);
  EXPECT_EQ(ReadCgroupBytes("/nonexistent"), kUnknownBytes);
}

// --- fork mode of the self-dump, in this process ---

class ForkSelfDumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SelfDumpConfig c;
    c.default_type = DumpType::kHeap;
    c.name_template = dir_ + "/core.%p.%r";
    ASSERT_THAT(PrepareSelfDump(c), IsOk());
  }
  ScopedTempDir tmp_{"cppdiag-forkdump"};
  std::string dir_ = tmp_.path();
};

struct Markers {
  char* before = nullptr;
  char* after = nullptr;
  int calls = 0;
};

void ChangeMarkers(void* context, uint64_t, uint64_t) {
  auto* m = static_cast<Markers*>(context);
  if (m->calls++ == 0) {
    std::memcpy(m->before, "changed-after-the-snapshot", 27);
    std::memcpy(m->after, "written-after-the-snapshot", 27);
  }
}

TEST_F(ForkSelfDumpTest, TheChildWritesASnapshotWithTheParentsIdentity) {
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
  // 16 MiB of heap, so the child writes long enough for progress calls.
  std::vector<char> heap(16 << 20, 'x');
  std::vector<char> before(4096, 0), after(4096, 0);
  std::memcpy(before.data(), "written-before-the-snapshot", 28);
  Markers m{before.data(), after.data()};

  std::string path = dir_ + "/fork.core";
  SelfDumpRequest req;
  req.type = DumpType::kHeap;
  req.path = path.c_str();
  req.mode = SelfDumpMode::kFork;
  req.progress = &ChangeMarkers;
  req.progress_context = &m;
  req.progress_interval_ms = 1;
  SelfDumpResult res;
  ASSERT_EQ(WriteSelfDump(req, &res), 0) << res.failed_call;
  ::close(fds[1]);
  for (auto& t : threads) t.join();
  ::close(fds[0]);

  EXPECT_EQ(res.mode, SelfDumpMode::kFork);
  EXPECT_STREQ(res.mode_reason, "requested");
  EXPECT_GT(res.pause_ns, 0u);
  EXPECT_LT(res.pause_ns, res.duration_ns);
  EXPECT_GE(res.threads, 3u);
  ASSERT_GE(m.calls, 1) << "the child finished before the first progress call";
  EXPECT_EQ(fs::file_size(path), res.size_bytes);

  auto core = testing::ParseCoreFile(path);
  ASSERT_THAT(core, IsOk());
  auto prstatus = core->NotesOfType("CORE", NT_PRSTATUS);
  ASSERT_EQ(prstatus.size(), res.threads);
  elf_prstatus first;
  std::memcpy(&first, prstatus[0]->desc.data(), sizeof first);
  EXPECT_EQ(first.pr_pid, static_cast<pid_t>(::syscall(SYS_gettid)));  // this thread, not the child
  EXPECT_EQ(first.pr_ppid, ::getppid());
  auto ps = core->NotesOfType("CORE", NT_PRPSINFO);
  ASSERT_EQ(ps.size(), 1u);
  elf_prpsinfo info;
  std::memcpy(&info, ps[0]->desc.data(), sizeof info);
  EXPECT_EQ(info.pr_pid, ::getpid());
  // The memory as of the clone: the later writes are not in it.
  auto b = core->ReadMemory(reinterpret_cast<uint64_t>(before.data()), 28);
  ASSERT_TRUE(b);
  EXPECT_STREQ(reinterpret_cast<const char*>(b->data()), "written-before-the-snapshot");
  auto a = core->ReadMemory(reinterpret_cast<uint64_t>(after.data()), 27);
  if (a) {  // zero (or a hole: never touched before the snapshot)
    EXPECT_EQ((*a)[0], 0);
  }
}

TEST_F(ForkSelfDumpTest, AutoWithoutAMemoryLimitForks) {
  SelfDumpConfig c;
  c.default_type = DumpType::kMini;
  c.name_template = dir_ + "/core.%p.%r";
  c.cgroup_version = -1;  // no cgroup: no limit known
  ASSERT_THAT(PrepareSelfDump(c), IsOk());
  SelfDumpRequest req;
  req.mode = SelfDumpMode::kAuto;
  SelfDumpResult res;
  ASSERT_EQ(WriteSelfDump(req, &res), 0) << res.failed_call;
  EXPECT_EQ(res.mode, SelfDumpMode::kFork);
  EXPECT_STREQ(res.mode_reason, "no cgroup memory limit");
  EXPECT_TRUE(fs::exists(res.path));
}

TEST_F(ForkSelfDumpTest, ADirectoryThatCannotBeWrittenFailsBeforeTheFork) {
  SelfDumpRequest req;
  req.path = "/nonexistent-dir/core";
  req.mode = SelfDumpMode::kFork;
  SelfDumpResult res;
  EXPECT_EQ(WriteSelfDump(req, &res), ENOENT);
  EXPECT_STREQ(res.failed_call, "open");
}

// A note provider that holds the fork-mode writer (it runs in the child) in
// its second call (the writing pass), until a byte comes on `read_fd`.
struct Gate {
  int read_fd = -1;
  int calls = 0;
};

void GatedProvider(void* context, NoteOutput* out) {
  auto* g = static_cast<Gate*>(context);
  if (g->calls++ == 1) {
    char c;
    (void)HANDLE_EINTR(::read(g->read_fd, &c, 1));
  }
  out->Begin("TEST", 1, 4);
  out->Append("abcd", 4);
}

// Lets the writer go on, then throws (as a callback that formats JSON or
// allocates may).
void ThrowingProgress(void* context, uint64_t, uint64_t) {
  char c = 1;
  (void)::write(*static_cast<int*>(context), &c, 1);
  throw std::runtime_error("progress callback failed");
}

TEST_F(ForkSelfDumpTest, AProgressCallbackThatThrowsNeitherEscapesNorKeepsTheLock) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  Gate gate{fds[0]};
  ASSERT_EQ(RegisterNoteProvider(&GatedProvider, &gate), 0);
  std::string path = dir_ + "/throwing.core";
  SelfDumpRequest req;
  req.type = DumpType::kMini;
  req.path = path.c_str();
  req.mode = SelfDumpMode::kFork;
  req.progress = &ThrowingProgress;
  req.progress_context = &fds[1];
  req.progress_interval_ms = 1;
  SelfDumpResult res;
  int err = -1;
  try {
    err = WriteSelfDump(req, &res);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "an exception crossed WriteSelfDump: " << e.what();
  }
  UnregisterNoteProvider(&GatedProvider, &gate);
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_EQ(err, 0) << res.failed_call;
  EXPECT_THAT(testing::ParseCoreFile(path), IsOk());

  SelfDumpRequest next;
  next.type = DumpType::kTriage;
  SelfDumpResult next_res;
  EXPECT_EQ(WriteSelfDump(next, &next_res), 0)
      << next_res.failed_call << " (the lock is still held?)";
}

TEST_F(ForkSelfDumpTest, AWriterThatMakesNoProgressIsKilledAndTheDumpFailsWithETIMEDOUT) {
  SelfDumpConfig c;
  c.default_type = DumpType::kMini;
  c.name_template = dir_ + "/core.%p.%r";
  c.writer_stall_timeout_ms = 300;
  ASSERT_THAT(PrepareSelfDump(c), IsOk());
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  Gate gate{fds[0]};  // nobody writes: the writer waits for ever
  ASSERT_EQ(RegisterNoteProvider(&GatedProvider, &gate), 0);
  SelfDumpRequest req;
  std::string path = dir_ + "/stalled.core";
  req.path = path.c_str();
  req.mode = SelfDumpMode::kFork;
  SelfDumpResult res;
  int err = WriteSelfDump(req, &res);
  UnregisterNoteProvider(&GatedProvider, &gate);
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_EQ(err, ETIMEDOUT) << res.failed_call;
  EXPECT_NE(std::string(res.failed_call).find("no progress"), std::string::npos) << res.failed_call;
  EXPECT_EQ(res.writer_signal, 0);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir_)) left.push_back(e.path().filename());
  EXPECT_EQ(left, std::vector<std::string>{}) << "nothing left behind";

  SelfDumpRequest next;
  next.type = DumpType::kTriage;
  SelfDumpResult next_res;
  EXPECT_EQ(WriteSelfDump(next, &next_res), 0)
      << next_res.failed_call << " (the lock is still held?)";
}

}  // namespace
}  // namespace cppdiag::dump
