// ASYNC-SIGNAL-SAFE: the SIGPROF handler and everything it calls. No
// malloc, no locks, no stdio, no exceptions; errno is preserved. The only
// glibc calls are pthread_self() (reads the thread register) and
// clock_gettime (vDSO), through common/async_safe.h.
#include "diag/cpu/internal/signal_handler.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "common/async_safe.h"

extern "C" void* __libc_stack_end;  // glibc: the initial thread's stack top

namespace cppdiag::cpu::internal {
namespace {

constexpr uintptr_t kPage = 4096;
constexpr uintptr_t kTrustedStack = 64u << 20;
constexpr int kProbeBudget = 16;

std::atomic<ThreadSlot*> g_first_slot{nullptr};
std::atomic<size_t> g_slot_count{0};

// Whether the 8 bytes at `addr` are readable, asked of the kernel instead of
// faulting: rt_sigprocmask copies its set from the address before it looks
// at `how`, so an invalid `how` gives EFAULT (unreadable) or EINVAL (readable)
// and changes no mask.
bool Readable(uintptr_t addr) {
  long r = syscall(SYS_rt_sigprocmask, ~0, addr, nullptr, sizeof(uint64_t));
  return !(r == -1 && errno == EFAULT);
}

struct Regs {
  uintptr_t pc = 0, fp = 0, sp = 0;
};

Regs FromContext(const void* ucontext) {
  const auto* uc = static_cast<const ucontext_t*>(ucontext);
  Regs r;
#if defined(__x86_64__)
  r.pc = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
  r.fp = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RBP]);
  r.sp = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
  r.pc = uc->uc_mcontext.pc;
  r.fp = uc->uc_mcontext.regs[29];
  r.sp = uc->uc_mcontext.sp;
#else
#error "the CPU sampler knows x86_64 and aarch64 contexts"
#endif
  return r;
}

// The top of the calling thread's stack: glibc puts a thread's descriptor at
// the top of its stack block; the initial thread's stack ends at
// __libc_stack_end.
uintptr_t StackTop() {
  if (CurrentTid() == CurrentPid()) return reinterpret_cast<uintptr_t>(__libc_stack_end);
  return static_cast<uintptr_t>(pthread_self());
}

// [lo, hi) known readable for this walk; grows page by page while the probe
// budget lasts.
struct Window {
  uintptr_t lo, hi;
  bool trusted;
  int budget = kProbeBudget;
  uintptr_t probed_lo = 0, probed_hi = 0;  // contiguous readable pages probed

  bool Covers(uintptr_t p) {
    if (p + 16 < p) return false;
    if (trusted) return p >= lo && p + 16 <= hi;
    // Untrusted: the frame's 16 bytes must lie in probed pages.
    uintptr_t first = p & ~(kPage - 1);
    uintptr_t last = (p + 15) & ~(kPage - 1);
    for (uintptr_t page = first; page <= last; page += kPage) {
      if (page >= probed_lo && page < probed_hi) continue;
      if (budget-- <= 0 || !Readable(page)) return false;
      if (page == probed_hi) {
        probed_hi = page + kPage;
      } else {
        probed_lo = page;
        probed_hi = page + kPage;
      }
    }
    return true;
  }
};

void OnSigprof(int, siginfo_t* info, void* ucontext) {
  int saved_errno = errno;
  if (info != nullptr && info->si_code == SI_TIMER) {
    auto* slot = static_cast<ThreadSlot*>(info->si_value.sival_ptr);
    ThreadSlot* first = g_first_slot.load(std::memory_order_acquire);
    size_t count = g_slot_count.load(std::memory_order_acquire);
    auto at = reinterpret_cast<uintptr_t>(slot);
    auto base = reinterpret_cast<uintptr_t>(first);
    // Only a slot of ours (a timer someone else made with SIGPROF is not).
    if (first != nullptr && at >= base && at < base + count * sizeof(ThreadSlot) &&
        (at - base) % sizeof(ThreadSlot) == 0) {
      int overrun = info->si_overrun;
      uint32_t weight = 1 + static_cast<uint32_t>(overrun > 0 ? overrun : 0);
      RecordSample(slot, ucontext, weight);
    }
  }
  errno = saved_errno;
}

}  // namespace

size_t WalkStack(const void* ucontext, uint64_t* pcs, size_t max) {
  if (max == 0) return 0;
  Regs r = FromContext(ucontext);
  size_t n = 0;
  pcs[n++] = r.pc;
  uintptr_t top = StackTop();
  Window w{r.sp, top, r.sp < top && top - r.sp <= kTrustedStack};
  uintptr_t fp = r.fp;
  uintptr_t prev = r.sp;
  while (n < max) {
    // A frame record: [fp] the caller's fp, [fp + 8] the return address.
    if (fp % sizeof(uintptr_t) != 0 || fp < prev || !w.Covers(fp)) break;
    const auto* record = reinterpret_cast<const uintptr_t*>(fp);
    uintptr_t next = record[0];
    uintptr_t ret = record[1];
    if (ret < kPage) break;
    pcs[n++] = ret;
    if (next <= fp) break;  // the chain only climbs; 0 ends it
    prev = fp;
    fp = next;
  }
  return n;
}

__attribute__((no_sanitize("address", "thread"))) void RecordSample(ThreadSlot* slot,
                                                                    const void* ucontext,
                                                                    uint32_t weight) {
  if (slot->tid.load(std::memory_order_acquire) != CurrentTid()) return;
  RawSample* s = slot->ring.Reserve();
  if (s == nullptr) return;
  s->time_ns = MonotonicNs();
  s->weight = weight;
  s->depth = static_cast<uint32_t>(WalkStack(ucontext, s->pcs, kMaxFrames));
  slot->ring.Commit();
}

void SetSlotRange(ThreadSlot* first, size_t count) {
  g_slot_count.store(count, std::memory_order_release);
  g_first_slot.store(first, std::memory_order_release);
}

Status InstallSigprofHandler() {
  static std::atomic<bool> installed{false};
  if (installed.load()) return OkStatus();
  struct sigaction old = {};
  if (::sigaction(kSampleSignal, nullptr, &old) != 0) return Error::FromErrno("sigaction");
  bool has_handler = (old.sa_flags & SA_SIGINFO) != 0
                         ? old.sa_sigaction != nullptr
                         : (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN);
  if (has_handler && old.sa_sigaction != &OnSigprof) {
    return Error(EBUSY, "",
                 "SIGPROF already has a handler in this process (another profiler?); "
                 "not sampling");
  }
  struct sigaction sa = {};
  sa.sa_sigaction = &OnSigprof;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(kSampleSignal, &sa, nullptr) != 0) return Error::FromErrno("sigaction");
  installed.store(true);
  return OkStatus();
}

}  // namespace cppdiag::cpu::internal
