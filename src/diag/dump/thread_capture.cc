// Async-signal-safe (everything but InstallThreadCapture): no allocation, no
// locks, no stdio, no exceptions.
#include "diag/dump/thread_capture.h"

#include <asm/prctl.h>
#include <cpuid.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstring>
#include <new>

#include "common/io.h"

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

pid_t Tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }
pid_t Pid() { return static_cast<pid_t>(::syscall(SYS_getpid)); }

long Futex(std::atomic<uint32_t>* word, int op, uint32_t val, const timespec* timeout) {
  return ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op | FUTEX_PRIVATE_FLAG, val,
                   timeout, nullptr, 0);
}

uint64_t NowMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

void CaptureHandler(int /*sig*/, siginfo_t* si, void* context) {
  int saved_errno = errno;
  // Only our own tgkill counts; anything else sending this signal is ignored.
  if (si->si_code != SI_TKILL || si->si_pid != Pid()) {
    errno = saved_errno;
    return;
  }
  pid_t tid = Tid();
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
      Futex(&g.pending, FUTEX_WAKE, 1, nullptr);
    }
    slot->state.store(kParked, std::memory_order_release);
    // Stay here, so this thread changes no memory, until the dump is written.
    while (g.release.load(std::memory_order_acquire) == release) {
      Futex(&g.release, FUTEX_WAIT, release, nullptr);
    }
  }
  errno = saved_errno;
}

size_t XstateCapacity() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  // CPUID.(EAX=0xD,ECX=0): EBX = XSAVE size for the features enabled in XCR0.
  if (__get_cpuid_count(0xd, 0, &eax, &ebx, &ecx, &edx) == 0 || ebx < 576) return 4096;
  size_t size = (ebx + 63) & ~size_t{63};
  return size > (64 << 10) ? (64 << 10) : size;
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
      pid_t tid = 0;
      bool digits = name[0] != '\0';
      for (const char* p = name; *p != '\0'; ++p) {
        if (*p < '0' || *p > '9') {
          digits = false;
          break;
        }
        tid = tid * 10 + (*p - '0');
      }
      if (digits && tid > 0) fn(tid);
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
    uint64_t left = deadline_ms - now;
    timespec ts{static_cast<time_t>(left / 1000), static_cast<long>((left % 1000) * 1000000)};
    Futex(&g.pending, FUTEX_WAIT, p, &ts);
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
  char path[32];
  {
    // "<tid>/syscall" without snprintf.
    char digits[16];
    int n = 0;
    for (pid_t v = tid; v > 0 && n < 15; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
    int p = 0;
    while (n > 0) path[p++] = digits[--n];
    std::memcpy(path + p, "/syscall", 9);
  }
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

bool ParseHex(const char** p, const char* end, uint64_t* out) {
  const char* s = *p;
  while (s < end && *s == ' ') ++s;
  if (end - s > 2 && s[0] == '0' && s[1] == 'x') s += 2;
  uint64_t v = 0;
  const char* start = s;
  for (; s < end; ++s) {
    char c = *s;
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) break;
    v = v * 16 + static_cast<uint64_t>(d);
  }
  if (s == start) return false;
  *p = s;
  *out = v;
  return true;
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
    void* p = ::mmap(nullptr, total, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) return Error::FromErrno("mmap", "thread capture slots");
    ::madvise(p, total, MADV_DONTDUMP);
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
  pid_t pid = Pid();
  pid_t me = Tid();
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
  Futex(&g.release, FUTEX_WAKE, INT_MAX, nullptr);
  g.dumper.store(0);
  g.busy.store(0, std::memory_order_release);
}

void FillThreadFromContext(const ucontext_t* uc, pid_t tid, uint64_t fs_base, uint8_t* xstate,
                           size_t xstate_capacity, ThreadSnapshot* t) {
  *t = ThreadSnapshot{};
  t->tid = tid;
  t->source = RegisterSource::kSignalFrame;
  const greg_t* g_regs = uc->uc_mcontext.gregs;
  auto r = [&](int i) { return static_cast<unsigned long long>(g_regs[i]); };
  user_regs_struct& u = t->regs;
  u.r15 = r(REG_R15);
  u.r14 = r(REG_R14);
  u.r13 = r(REG_R13);
  u.r12 = r(REG_R12);
  u.rbp = r(REG_RBP);
  u.rbx = r(REG_RBX);
  u.r11 = r(REG_R11);
  u.r10 = r(REG_R10);
  u.r9 = r(REG_R9);
  u.r8 = r(REG_R8);
  u.rax = r(REG_RAX);
  u.rcx = r(REG_RCX);
  u.rdx = r(REG_RDX);
  u.rsi = r(REG_RSI);
  u.rdi = r(REG_RDI);
  u.orig_rax = ~0ULL;  // not in a signal frame; -1 means "not in a syscall"
  u.rip = r(REG_RIP);
  u.eflags = r(REG_EFL);
  u.rsp = r(REG_RSP);
  uint64_t csgsfs = r(REG_CSGSFS);
  u.cs = csgsfs & 0xffff;
  u.gs = (csgsfs >> 16) & 0xffff;
  u.fs = (csgsfs >> 32) & 0xffff;
  u.ss = (csgsfs >> 48) & 0xffff;
  if (u.cs == 0) u.cs = 0x33;
  if (u.ss == 0) u.ss = 0x2b;  // older kernels leave ss out of the frame
  u.fs_base = fs_base;
  std::memcpy(&t->sighold, &uc->uc_sigmask, sizeof t->sighold);

  const auto* fp = reinterpret_cast<const uint8_t*>(uc->uc_mcontext.fpregs);
  if (fp == nullptr) return;
  std::memcpy(&t->fpregs, fp, sizeof t->fpregs);
  t->has_fpregs = true;
  // Bytes 464..511 of the FXSAVE area are the kernel's software-reserved
  // struct _fpx_sw_bytes; they do not belong in NT_PRFPREG.
  constexpr size_t kSwBytes = 464;
  std::memset(reinterpret_cast<uint8_t*>(&t->fpregs) + kSwBytes, 0, 512 - kSwBytes);
  _fpx_sw_bytes sw;
  std::memcpy(&sw, fp + kSwBytes, sizeof sw);
  if (sw.magic1 != FP_XSTATE_MAGIC1 || sw.xstate_size < 576 || xstate == nullptr ||
      sw.xstate_size > xstate_capacity || sw.extended_size < sw.xstate_size + 4) {
    return;
  }
  uint32_t magic2;
  std::memcpy(&magic2, fp + sw.xstate_size, sizeof magic2);
  if (magic2 != FP_XSTATE_MAGIC2) return;
  std::memcpy(xstate, fp, sw.xstate_size);
  // NT_X86_XSTATE keeps XCR0 (the enabled features) in bytes 464..471.
  std::memset(xstate + kSwBytes, 0, 512 - kSwBytes);
  uint64_t xcr0 = sw.xstate_bv;  // the kernel puts the enabled features (XCR0) here
  std::memcpy(xstate + kSwBytes, &xcr0, sizeof xcr0);
  t->xstate = xstate;
  t->xstate_size = sw.xstate_size;
}

size_t BuildXsaveLayout(uint8_t* out, size_t capacity) {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || !(ecx & bit_OSXSAVE)) return 0;
  uint32_t lo = 0, hi = 0;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  uint64_t xcr0 = (uint64_t{hi} << 32) | lo;
  size_t n = 0;
  for (unsigned i = 2; i < 64; ++i) {
    if (!((xcr0 >> i) & 1)) continue;
    if (n + 16 > capacity) return 0;
    __get_cpuid_count(0xd, i, &eax, &ebx, &ecx, &edx);
    uint32_t rec[4] = {i, eax, ebx, 0};  // type, size, offset, flags
    std::memcpy(out + n, rec, sizeof rec);
    n += sizeof rec;
  }
  return n;
}

bool FillThreadFromSyscallFile(const char* text, size_t len, ThreadSnapshot* t) {
  const char* p = text;
  const char* end = text + len;
  if (len >= 7 && std::memcmp(text, "running", 7) == 0) return false;
  bool negative = p < end && *p == '-';
  if (negative) ++p;
  uint64_t nr = 0;
  const char* digits = p;
  while (p < end && *p >= '0' && *p <= '9') nr = nr * 10 + static_cast<uint64_t>(*p++ - '0');
  if (p == digits) return false;
  uint64_t v[8];
  size_t n = 0;
  while (n < 8 && ParseHex(&p, end, &v[n])) ++n;
  user_regs_struct& u = t->regs;
  if (negative && n >= 2) {  // "-1 sp pc": blocked, not in a syscall
    u.rsp = v[0];
    u.rip = v[1];
  } else if (!negative && n == 8) {
    u.orig_rax = nr;
    u.rdi = v[0];
    u.rsi = v[1];
    u.rdx = v[2];
    u.r10 = v[3];
    u.r8 = v[4];
    u.r9 = v[5];
    u.rsp = v[6];
    u.rip = v[7];
    u.rcx = v[7];  // the syscall instruction leaves the return address in rcx
  } else {
    return false;
  }
  u.cs = 0x33;
  u.ss = 0x2b;
  t->source = RegisterSource::kKernelSyscall;
  return true;
}

}  // namespace cppdiag::dump
