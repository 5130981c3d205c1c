#include "diag/dump/thread_capture.h"
#include "diag/dump/x86_64_registers.h"

#include <cpuid.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <latch>
#include <set>
#include <thread>
#include <vector>

#include "common/proc.h"
#include "common/scoped_fd.h"
#include "support/status_matchers.h"

namespace cppdiag::dump {
namespace {

using ::cppdiag::testing::IsOk;

const int kSignal = SIGRTMAX - 3;  // what self-dumps use by default

TEST(ThreadCaptureTest, SyscallFileParsing) {
  ThreadSnapshot t;
  EXPECT_FALSE(FillThreadFromSyscallFile("running\n", 8, &t));
  const char blocked[] = "-1 0x7ffc0000aa00 0x7f0000001234\n";
  ASSERT_TRUE(FillThreadFromSyscallFile(blocked, sizeof blocked - 1, &t));
  EXPECT_EQ(t.regs.rsp, 0x7ffc0000aa00u);
  EXPECT_EQ(t.regs.rip, 0x7f0000001234u);
  EXPECT_EQ(t.source, RegisterSource::kKernelSyscall);
  ThreadSnapshot u;
  const char in_call[] = "202 0x55550000 0x80 0x0 0x0 0x0 0x0 0x7ffe1000 0x7f00002000\n";
  ASSERT_TRUE(FillThreadFromSyscallFile(in_call, sizeof in_call - 1, &u));
  EXPECT_EQ(u.regs.orig_rax, 202u);
  EXPECT_EQ(u.regs.rdi, 0x55550000u);
  EXPECT_EQ(u.regs.rsi, 0x80u);
  EXPECT_EQ(u.regs.rsp, 0x7ffe1000u);
  EXPECT_EQ(u.regs.rip, 0x7f00002000u);
  ThreadSnapshot v;
  EXPECT_FALSE(FillThreadFromSyscallFile("202 0x1 0x2\n", 12, &v));
  EXPECT_FALSE(FillThreadFromSyscallFile("garbage", 7, &v));
}

struct Captured {
  ThreadSnapshot t;
  uint8_t xstate[64 << 10];
  uint64_t local_address = 0;
};
Captured* g_captured = nullptr;

void RecordSelf(int, siginfo_t*, void* uc) {
  uint64_t fs = 0;
  ::syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &fs);
  FillThreadFromContext(static_cast<ucontext_t*>(uc), static_cast<pid_t>(::syscall(SYS_gettid)), fs,
                        g_captured->xstate, sizeof g_captured->xstate, &g_captured->t);
}

TEST(ThreadCaptureTest, ContextOfARealSignalFrame) {
  auto c = std::make_unique<Captured>();
  g_captured = c.get();
  struct sigaction sa {
  }, old{};
  sa.sa_sigaction = &RecordSelf;
  sa.sa_flags = SA_SIGINFO;
  ASSERT_EQ(::sigaction(SIGUSR2, &sa, &old), 0);
  int local = 0;
  c->local_address = reinterpret_cast<uint64_t>(&local);
  ASSERT_EQ(::raise(SIGUSR2), 0);
  ::sigaction(SIGUSR2, &old, nullptr);
  const ThreadSnapshot& t = c->t;
  EXPECT_EQ(t.tid, static_cast<pid_t>(::syscall(SYS_gettid)));
  EXPECT_EQ(t.source, RegisterSource::kSignalFrame);
  EXPECT_NE(t.regs.rip, 0u);
  // Interrupted below this frame, on this stack.
  EXPECT_LT(t.regs.rsp, c->local_address);
  EXPECT_GT(t.regs.rsp, c->local_address - (1 << 20));
  EXPECT_EQ(t.regs.cs, 0x33u);
  EXPECT_NE(t.regs.fs_base, 0u);
  ASSERT_TRUE(t.has_fpregs);
  EXPECT_EQ(t.fpregs.mxcsr & 0xffc0, 0x1f80u);  // the default rounding and masks
  unsigned a, b, cx, d;
  bool xsave = __get_cpuid(1, &a, &b, &cx, &d) && (cx & bit_OSXSAVE);
  if (!xsave) GTEST_SKIP() << "no XSAVE";
  ASSERT_NE(t.xstate, nullptr);
  EXPECT_GE(t.xstate_size, 576u);
  uint32_t lo, hi;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  uint64_t xcr0;
  std::memcpy(&xcr0, t.xstate + 464, sizeof xcr0);
  // NT_X86_XSTATE keeps XCR0 at 464: the features the signal frame holds,
  // which are XCR0 less the ones the kernel enables per process on first use
  // (those CPUID.(0xD,i).ECX[2] marks as XFD-capable: AMX tile data), so the
  // size gdb derives from it matches the frame's.
  uint64_t enabled = (uint64_t{hi} << 32) | lo;
  uint64_t dynamic = 0;
  for (unsigned i = 2; i < 64; ++i) {
    if (((enabled >> i) & 1) && __get_cpuid_count(0xd, i, &a, &b, &cx, &d) && (cx & 4)) {
      dynamic |= uint64_t{1} << i;
    }
  }
  EXPECT_EQ(xcr0, enabled & ~dynamic);
  EXPECT_EQ(std::memcmp(t.xstate, &t.fpregs, 160), 0);  // the legacy area matches FXSAVE
}

TEST(ThreadCaptureTest, XsaveLayoutRecords) {
  uint8_t buf[1024];
  size_t n = BuildXsaveLayout(buf, sizeof buf);
  ASSERT_EQ(n % 16, 0u);
  uint32_t prev = 1;
  for (size_t i = 0; i < n; i += 16) {
    uint32_t rec[4];
    std::memcpy(rec, buf + i, sizeof rec);
    EXPECT_GT(rec[0], prev);
    EXPECT_GT(rec[1], 0u);
    EXPECT_GE(rec[2], 576u);  // after the legacy area and the XSAVE header
    prev = rec[0];
  }
  EXPECT_EQ(BuildXsaveLayout(buf, n == 0 ? 0 : n - 1), 0u);
}

class ThreadsOnAPipe {
 public:
  ThreadsOnAPipe(int n, bool block_signals) {
    EXPECT_EQ(::pipe(fds_), 0);
    std::latch started(n);
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, &started, block_signals] {
        if (block_signals) {
          sigset_t all;
          sigfillset(&all);
          ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
        }
        tids_[count_++] = static_cast<pid_t>(::syscall(SYS_gettid));
        started.count_down();
        char c;
        while (::read(fds_[0], &c, 1) > 0) {
        }
      });
    }
    started.wait();
  }
  ~ThreadsOnAPipe() {
    ::close(fds_[1]);
    for (auto& t : threads_) t.join();
    ::close(fds_[0]);
  }

 private:
  int fds_[2];
  std::vector<std::thread> threads_;
  std::atomic<int> count_{0};
  pid_t tids_[64] = {};
};

TEST(ThreadCaptureTest, StopsAndRecordsEveryThreadThenReleasesThem) {
  ASSERT_THAT(InstallThreadCapture(kSignal, 64), IsOk());
  ThreadsOnAPipe threads(3, false);
  ScopedFd task(::open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto expected = ListThreads(::getpid());
  ASSERT_THAT(expected, IsOk());
  CaptureOptions o;
  o.task_dir_fd = task.get();
  o.timeout_ms = 5000;
  CaptureResult r;
  ASSERT_EQ(CaptureAllThreads(o, &r), 0);
  std::set<pid_t> seen;
  for (size_t i = 0; i < r.count; ++i) {
    seen.insert(r.threads[i]->tid);
    EXPECT_EQ(r.threads[i]->source, RegisterSource::kSignalFrame);
    EXPECT_NE(r.threads[i]->regs.rsp, 0u);
  }
  EXPECT_EQ(r.threads[0]->tid, static_cast<pid_t>(::syscall(SYS_gettid)));
  EXPECT_EQ(r.not_captured, 0u);
  EXPECT_EQ(r.not_listed, 0u);
  CaptureResult again;
  EXPECT_EQ(CaptureAllThreads(o, &again), EBUSY);  // one capture at a time
  ReleaseThreads();
  EXPECT_EQ(seen, std::set<pid_t>(expected->begin(), expected->end()));
  // Released: the destructor's join returns.
}

// A thread that answers late, but before the deadline, is waited for: it
// blocks the signal until it sees it pending (the capture has asked), then
// lets it in. A condition, not a timing: the deadline is a minute away.
TEST(ThreadCaptureTest, AThreadThatAnswersLateIsWaitedFor) {
  ASSERT_THAT(InstallThreadCapture(kSignal, 64), IsOk());
  std::atomic<pid_t> late_tid{0};
  std::atomic<bool> done{false};
  std::thread late([&] {
    sigset_t capture;
    sigemptyset(&capture);
    sigaddset(&capture, kSignal);
    ::pthread_sigmask(SIG_BLOCK, &capture, nullptr);
    late_tid = static_cast<pid_t>(::syscall(SYS_gettid));
    for (;;) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, kSignal)) break;
      if (done) return;  // the capture failed before it asked
      ::sched_yield();
    }
    ::pthread_sigmask(SIG_UNBLOCK, &capture, nullptr);  // the handler runs here
    while (!done) ::sched_yield();
  });
  while (late_tid == 0) ::sched_yield();
  ScopedFd task(::open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  CaptureOptions o;
  o.task_dir_fd = task.get();
  o.timeout_ms = 60000;
  CaptureResult r;
  int rc = CaptureAllThreads(o, &r);
  // The slots are valid until ReleaseThreads.
  bool seen = false;
  RegisterSource source{};
  for (size_t i = 0; rc == 0 && i < r.count; ++i) {
    if (r.threads[i]->tid != late_tid) continue;
    seen = true;
    source = r.threads[i]->source;
  }
  ReleaseThreads();
  done = true;
  late.join();
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(r.not_captured, 0u);
  EXPECT_TRUE(seen) << "the late thread is not in the capture";
  EXPECT_EQ(source, RegisterSource::kSignalFrame);
}

TEST(ThreadCaptureTest, AThreadThatBlocksTheSignalTimesOutAndIsReadFromProc) {
  ASSERT_THAT(InstallThreadCapture(kSignal, 64), IsOk());
  ThreadsOnAPipe normal(2, false);
  ThreadsOnAPipe blocked(1, true);
  ScopedFd task(::open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  CaptureOptions o;
  o.task_dir_fd = task.get();
  o.timeout_ms = 300;
  CaptureResult r;
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(CaptureAllThreads(o, &r), 0);
  auto took = std::chrono::steady_clock::now() - start;
  ReleaseThreads();
  // It returned with the blocked thread not captured: the deadline ended the
  // wait (that thread never answers). It waited the deadline out first: a
  // lower bound, which no slow machine can break.
  EXPECT_EQ(r.not_captured, 1u);
  EXPECT_GE(took, std::chrono::milliseconds(290));  // the deadline counts whole milliseconds
  size_t from_proc = 0;
  for (size_t i = 0; i < r.count; ++i) {
    if (r.threads[i]->source == RegisterSource::kKernelSyscall) {
      ++from_proc;
      EXPECT_EQ(r.threads[i]->regs.orig_rax, 0u);  // blocked in read(2)
      EXPECT_NE(r.threads[i]->regs.rip, 0u);
    }
  }
  EXPECT_EQ(from_proc, 1u);
}

TEST(ThreadCaptureTest, OwnContextIsUsedForTheCallingThread) {
  ASSERT_THAT(InstallThreadCapture(kSignal, 64), IsOk());
  ucontext_t uc;
  std::memset(&uc, 0, sizeof uc);
  uc.uc_mcontext.gregs[REG_RIP] = 0x1234;
  uc.uc_mcontext.gregs[REG_RSP] = 0x5678;
  ScopedFd task(::open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  CaptureOptions o;
  o.own_context = &uc;
  o.own_signal = SIGSEGV;
  o.task_dir_fd = task.get();
  CaptureResult r;
  ASSERT_EQ(CaptureAllThreads(o, &r), 0);
  ReleaseThreads();
  ASSERT_GE(r.count, 1u);
  EXPECT_EQ(r.threads[0]->regs.rip, 0x1234u);
  EXPECT_EQ(r.threads[0]->regs.rsp, 0x5678u);
  EXPECT_EQ(r.threads[0]->cursig, SIGSEGV);
}

}  // namespace
}  // namespace cppdiag::dump
