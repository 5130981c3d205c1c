// Async-signal-safe (everything but InstallThreadCapture): no allocation, no
// locks, no stdio, no exceptions.
#include "diag/dump/thread_capture.h"

#include <asm/prctl.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstring>
#include <new>

#include "common/async_safe.h"
#include "common/io.h"
#include "diag/dump/x86_64_registers.h"

namespace cppdiag::dump {
namespace {

// Slot states. A handler moves kRequested -> kCapturing -> kCaptured ->
// kParked; the dumper may move kRequested -> kAbandoned when time is up.
enum SlotState : int { kFree, kRequested, kCapturing, kCaptured, kParked, kAbandoned, kGone };

struct Slot {
  std::atomic<int> state{kFree};
  std::atomic<pid_t> tid{0};
  ThreadSnapshot thread;
  uint8_t* xstate = nullptr;
};

constexpr size_t kStackCopyBytes = 64 << 10;

struct Control {
  int signal = 0;
  uint8_t* stack_copy = nullptr;  // kStackCopyBytes
  Slot* slots = nullptr;
  const ThreadSnapshot** order = nullptr;
  size_t max_threads = 0;
  size_t xstate_capacity = 0;
  void* region = nullptr;
  size_t region_size = 0;
  std::atomic<size_t> active_slots{0};  // slots a handler may look at
  std::atomic<int> busy{0};
  std::atomic<uint32_t> pending{0};  // futex word: threads yet to answer
  std::atomic<uint32_t> release{0};  // futex word: bumped to release
  std::atomic<pid_t> dumper{0};
};

Control g;

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex word");
static_assert(std::atomic<int>::is_always_lock_free, "handlers need lock-free atomics");

uint64_t NowMs() { return MonotonicNs() / 1000000; }

void CaptureHandler(int /*sig*/, siginfo_t* si, void* context) {
  int saved_errno = errno;
  // Only our own tgkill counts; anything else sending this signal is ignored.
  if (si->si_code != SI_TKILL || si->si_pid != CurrentPid()) {
    errno = saved_errno;
    return;
  }
  pid_t tid = CurrentTid();
  size_t n = g.active_slots.load(std::memory_order_acquire);
  Slot* slot = nullptr;
  for (size_t i = 0; i < n; ++i) {
    if (g.slots[i].tid.load(std::memory_order_relaxed) == tid) {
      slot = &g.slots[i];
      break;
    }
  }
  int expected = kRequested;
  if (slot == nullptr || !slot->state.compare_exchange_strong(expected, kCapturing)) {
    errno = saved_errno;
    return;  // late (abandoned) or not asked
  }
  uint64_t fs_base = 0;
  ::syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_base);
  FillThreadFromContext(static_cast<const ucontext_t*>(context), tid, fs_base, slot->xstate,
                        g.xstate_capacity, &slot->thread);
  bool self = tid == g.dumper.load(std::memory_order_relaxed);
  uint32_t release = g.release.load(std::memory_order_acquire);
  slot->state.store(kCaptured, std::memory_order_release);
  if (!self) {
    if (g.pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      FutexWake(&g.pending, 1);
    }
    slot->state.store(kParked, std::memory_order_release);
    // Stay here, so this thread changes no memory, until the dump is written.
    while (g.release.load(std::memory_order_acquire) == release) {
      FutexWait(&g.release, release);
    }
  }
  errno = saved_errno;
}

// Calls fn(tid) for each entry of /proc/self/task (raw getdents64: no opendir,
// which allocates).
template <typename Fn>
void ForEachTask(int dir_fd, Fn fn) {
  if (::lseek(dir_fd, 0, SEEK_SET) != 0) return;
  alignas(8) char buf[2048];
  for (;;) {
    long n = HANDLE_EINTR(::syscall(SYS_getdents64, dir_fd, buf, sizeof buf));
    if (n <= 0) return;
    for (long off = 0; off < n;) {
      // struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name[]
      uint16_t reclen;
      std::memcpy(&reclen, buf + off + 16, sizeof reclen);
      const char* name = buf + off + 19;
      std::string_view entry(name);
      uint64_t tid = 0;
      if (ParseDecimal(entry, &tid) == entry.size() && tid > 0 && tid <= INT32_MAX) {
        fn(static_cast<pid_t>(tid));
      }
      off += reclen;
    }
  }
}

bool Known(size_t used, pid_t tid) {
  for (size_t i = 0; i < used; ++i) {
    if (g.slots[i].tid.load(std::memory_order_relaxed) == tid) return true;
  }
  return false;
}

// Waits until every signalled thread answered; false at the deadline.
bool WaitPending(uint64_t deadline_ms) {
  for (;;) {
    uint32_t p = g.pending.load(std::memory_order_acquire);
    if (p == 0) return true;
    uint64_t now = NowMs();
    if (now >= deadline_ms) return false;
    FutexWait(&g.pending, p, static_cast<int64_t>(deadline_ms - now) * 1000000);
  }
}

// The calling thread's registers without a signal frame (if its own signal
// could not be delivered): enough for a frame-pointer unwind.
void FillFromHere(ThreadSnapshot* t) {
  uint64_t rip, rsp, rbp;
  asm volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2"
               : "=r"(rip), "=r"(rsp), "=r"(rbp));
  t->regs.rip = rip;
  t->regs.rsp = rsp;
  t->regs.rbp = rbp;
  t->regs.cs = 0x33;
  t->regs.ss = 0x2b;
  t->source = RegisterSource::kNone;
}

void CaptureSelf(const CaptureOptions& o, Slot* s0, pid_t pid, pid_t me) {
  s0->thread = ThreadSnapshot{};
  if (o.own_context != nullptr) {
    uint64_t fs_base = 0;
    ::syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_base);
    FillThreadFromContext(o.own_context, me, fs_base, s0->xstate, g.xstate_capacity, &s0->thread);
    s0->thread.cursig = o.own_signal;
    s0->state.store(kCaptured, std::memory_order_release);
    return;
  }
  s0->state.store(kRequested, std::memory_order_release);
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, g.signal);
  ::pthread_sigmask(SIG_UNBLOCK, &set, &old);
  // Delivered to this thread on the way out of the syscall: the handler
  // records the context of this very call.
  ::syscall(SYS_tgkill, pid, me, g.signal);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  int expected = kRequested;
  if (s0->state.compare_exchange_strong(expected, kCaptured)) {
    s0->thread.tid = me;
    FillFromHere(&s0->thread);
  }
}

void RecordFromProc(int task_dir_fd, Slot* s) {
  pid_t tid = s->tid.load(std::memory_order_relaxed);
  char path[kMaxDecimalChars + 16];  // "<tid>/syscall"
  size_t n = FormatDecimal(static_cast<int64_t>(tid), path, sizeof path);
  std::memcpy(path + n, "/syscall", 9);
  s->thread = ThreadSnapshot{};
  s->thread.tid = tid;
  int fd = HANDLE_EINTR(::openat(task_dir_fd, path, O_RDONLY | O_CLOEXEC));
  if (fd < 0) {
    if (errno == ENOENT || errno == ESRCH) s->state.store(kGone, std::memory_order_relaxed);
    return;
  }
  char text[256];
  ssize_t len = HANDLE_EINTR(::read(fd, text, sizeof text - 1));
  ::close(fd);
  if (len > 0) FillThreadFromSyscallFile(text, static_cast<size_t>(len), &s->thread);
}

// Keeps the bytes between the captured SP (minus the red zone) and the
// caller's frame: the frames of the capture itself, which later calls reuse.
// It reads dead frames and the red zone on purpose, which AddressSanitizer
// reports as a stack-buffer underflow: not instrumented, and copied by hand
// (a memcpy would go through the sanitizer's checked interceptor).
__attribute__((no_sanitize("address"))) void CopyOwnStack(const CaptureOptions& o, const Slot* s0,
                                                          CaptureResult* result) {
  uint64_t from = s0->thread.regs.rsp - 128;
  if (s0->thread.regs.rsp == 0 || o.keep_stack_top <= from) return;
  size_t size = o.keep_stack_top - from;
  if (size > kStackCopyBytes) size = kStackCopyBytes;  // the innermost frames matter most
  const volatile auto* in = reinterpret_cast<const volatile uint8_t*>(from);
  for (size_t i = 0; i < size; ++i) g.stack_copy[i] = in[i];
  result->stack_copy = StackCopy{from, g.stack_copy, size};
}

}  // namespace

Status InstallThreadCapture(int signal, size_t max_threads) {
  if (g.slots == nullptr) {
    if (max_threads < 1) max_threads = 1;
    size_t xcap = XstateCapacity();
    size_t slot_bytes = (max_threads * sizeof(Slot) + 63) & ~size_t{63};
    size_t order_bytes = (max_threads * sizeof(void*) + 63) & ~size_t{63};  // pointers
    size_t total = slot_bytes + order_bytes + max_threads * xcap + kStackCopyBytes;
    total = (total + 4095) & ~size_t{4095};
    ScopedMmap mapping = ScopedMmap::Anonymous(total, /*populate=*/true);
    if (!mapping.ok()) return Error::FromErrno("mmap", "thread capture slots");
    // Never unmapped: a handler may still look at the slots while the process exits.
    void* p = mapping.release();
    auto* bytes = static_cast<uint8_t*>(p);
    g.slots = reinterpret_cast<Slot*>(bytes);
    for (size_t i = 0; i < max_threads; ++i) {
      new (&g.slots[i]) Slot();
      g.slots[i].xstate = bytes + slot_bytes + order_bytes + i * xcap;
    }
    g.order = reinterpret_cast<const ThreadSnapshot**>(bytes + slot_bytes);
    g.stack_copy = bytes + slot_bytes + order_bytes + max_threads * xcap;
    g.max_threads = max_threads;
    g.xstate_capacity = xcap;
    g.region = p;
    g.region_size = total;
  }
  if (g.signal == signal) return OkStatus();
  struct sigaction old {};
  if (::sigaction(signal, nullptr, &old) != 0) return Error::FromErrno("sigaction", "query");
  bool ours = (old.sa_flags & SA_SIGINFO) && old.sa_sigaction == &CaptureHandler;
  if (!ours && old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
    return Error(EBUSY, "sigaction", "signal " + std::to_string(signal) + " already has a handler");
  }
  struct sigaction sa {};
  sa.sa_sigaction = &CaptureHandler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigfillset(&sa.sa_mask);  // nothing else runs on top of a stopped thread
  if (::sigaction(signal, &sa, nullptr) != 0) return Error::FromErrno("sigaction", "install");
  g.signal = signal;
  return OkStatus();
}

int CaptureAllThreads(const CaptureOptions& o, CaptureResult* result) {
  *result = CaptureResult{};
  if (g.slots == nullptr || g.signal == 0) return EINVAL;
  int expected = 0;
  if (!g.busy.compare_exchange_strong(expected, 1)) return EBUSY;
  pid_t pid = CurrentPid();
  pid_t me = CurrentTid();
  uint64_t deadline = NowMs() + o.timeout_ms;
  g.dumper.store(me);
  g.pending.store(0);
  for (size_t i = 0; i < g.max_threads; ++i) {
    g.slots[i].state.store(kFree, std::memory_order_relaxed);
    g.slots[i].tid.store(0, std::memory_order_relaxed);
  }
  Slot* s0 = &g.slots[0];
  s0->tid.store(me, std::memory_order_relaxed);
  g.active_slots.store(1, std::memory_order_release);
  CaptureSelf(o, s0, pid, me);
  if (o.own_context == nullptr && o.keep_stack_top != 0) CopyOwnStack(o, s0, result);

  // Rounds: threads created by others before those were stopped show up in
  // the next listing.
  size_t used = 1;
  bool in_time = true;
  for (int round = 0; round < 8 && in_time && o.task_dir_fd >= 0; ++round) {
    size_t added = 0;
    ForEachTask(o.task_dir_fd, [&](pid_t tid) {
      if (used == g.max_threads || Known(used, tid)) return;
      Slot& s = g.slots[used];
      s.thread = ThreadSnapshot{};
      s.thread.tid = tid;
      s.tid.store(tid, std::memory_order_relaxed);
      s.state.store(kRequested, std::memory_order_release);
      g.active_slots.store(++used, std::memory_order_release);
      g.pending.fetch_add(1, std::memory_order_acq_rel);
      if (::syscall(SYS_tgkill, pid, tid, g.signal) != 0) {
        int req = kRequested;
        if (s.state.compare_exchange_strong(req, kGone)) g.pending.fetch_sub(1);
      }
      ++added;
    });
    if (added == 0) break;
    in_time = WaitPending(deadline);
  }

  // Threads that did not answer: take them off the list of those to wait for,
  // then record what /proc says.
  for (size_t i = 1; i < used; ++i) {
    Slot& s = g.slots[i];
    int req = kRequested;
    if (s.state.compare_exchange_strong(req, kAbandoned)) {
      RecordFromProc(o.task_dir_fd, &s);
      if (s.state.load() != kGone) ++result->not_captured;
      continue;
    }
    // A handler still copying: it is about to park, wait for it.
    int st;
    while ((st = s.state.load(std::memory_order_acquire)) == kCapturing || st == kCaptured) {
      ::sched_yield();
    }
  }
  size_t n = 0;
  for (size_t i = 0; i < used; ++i) {
    int st = g.slots[i].state.load(std::memory_order_acquire);
    if (st == kCaptured || st == kParked || st == kAbandoned) g.order[n++] = &g.slots[i].thread;
  }
  if (o.task_dir_fd >= 0) {
    ForEachTask(o.task_dir_fd, [&](pid_t tid) {
      if (!Known(used, tid)) ++result->not_listed;
    });
  }
  result->threads = g.order;
  result->count = n;
  return 0;
}

void ReleaseThreads() {
  if (g.slots == nullptr) return;
  g.active_slots.store(0, std::memory_order_release);
  g.release.fetch_add(1, std::memory_order_acq_rel);
  FutexWake(&g.release, INT_MAX);
  g.dumper.store(0);
  g.busy.store(0, std::memory_order_release);
}

}  // namespace cppdiag::dump
