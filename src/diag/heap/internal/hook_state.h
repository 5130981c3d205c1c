// What the allocation hooks share between their parts: the entry points
// (allocation_hooks.cc), exact accounting and the hard limit (accounting.h),
// and the profiler's sampling (profiler_hooks.h). Private to diag/heap.
//
// Everything here runs inside malloc: no allocation, no locks, no stdio.
// The state is defined in allocation_hooks.cc, so that a program using any
// part of the heap API links the entry points too.
#pragma once

#include <atomic>
#include <cstdint>

#include "diag/heap/sampler.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CPPDIAG_INTERPOSE_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CPPDIAG_INTERPOSE_MALLOC 0
#endif
#endif
#ifndef CPPDIAG_INTERPOSE_MALLOC
#define CPPDIAG_INTERPOSE_MALLOC 1
#endif

// Code whose return addresses the sampler drops from the top of a stack: the
// entry points and every slow path below them, in whichever file.
#define CPPDIAG_HOOK __attribute__((section("cppdiag_hooks")))
// Shared between the hooks' files but not exported from the preload library:
// read PC-relative, without a GOT load, on the fast paths.
#define CPPDIAG_HOOK_STATE __attribute__((visibility("hidden")))

namespace cppdiag::heap::hooks {

// What the fast paths read, alone on a cache line (the accounting counters
// are written by every fold).
struct alignas(64) FastFlags {
  std::atomic<bool> exact{false};  // exact accounting: the entry points' *Exact paths
  std::atomic<uint64_t> limit{0};  // the hard limit, read at each fold
  // free()'s test: a block whose address minus free_lo is below free_span
  // takes the slow path; of those, one below region_span too is a sampled
  // block. free_lo is the sample region's start once the profiler runs (else
  // 0), region_span its span (else 0); free_span is region_span, or with
  // exact accounting every address (~0: all but free_lo - 1, which no block
  // starts at). Nothing (spans 0) before either. Written by SetFreeBounds
  // only.
  std::atomic<uintptr_t> free_lo{0};
  std::atomic<uintptr_t> free_span{0};
  std::atomic<uintptr_t> region_span{0};
};
CPPDIAG_HOOK_STATE extern FastFlags g_fast;

// Sets free()'s bounds: every address once `all` was passed (exact
// accounting: called before the accounting flag is raised, so a block is
// never allocated accounted and freed unaccounted), and the sample region
// once it exists. Normal context (profiler start, EnableExactHeapAccounting).
CPPDIAG_HOOK_STATE void SetFreeBounds(bool all);

// Exact accounting's per-thread counts fold into the shared ones every
// 256 KiB the thread allocates, or frees; sooner near the limit
// (accounting.h).
inline constexpr int64_t kFoldBytes = int64_t{256} << 10;

struct ThreadState {
  // The fast path's one field: bytes the thread may allocate before it leaves
  // the fast path. Without exact accounting, the sampling countdown itself;
  // once the thread keeps exact accounting, 0 (every call leaves the fast
  // path for the exact one) and the sampling countdown is exact_countdown.
  int64_t countdown = 0;
  // With exact accounting, the sampling countdown (at least 1 between
  // samples); 0 while the thread does not keep it, so that the exact path's
  // test fails and the slow path switches the thread (SampleCountdown).
  int64_t exact_countdown = 0;
  int64_t stride = 0;  // the sampling countdown's value at the last draw: stride - it = bytes since
  // Exact accounting (accounting.h): the bytes the thread may still allocate
  // before it folds, at most kFoldBytes and at most the room the hard limit
  // left at its last fold (below 0: fold now), and those it may free.
  int64_t budget = 0;
  // The budget the last fold gave: budget_start - budget is what was
  // allocated since (kFoldBytes - free_left what was freed).
  int64_t budget_start = 0;
  int64_t free_left = kFoldBytes;
  // The thread's id for the samples it takes (0: not asked yet): one gettid
  // syscall in the thread's life instead of one a sample. Reset in a fork
  // child (profiler_hooks.cc), whose thread has a new id.
  int32_t tid = 0;
  bool in_hook = false;
  bool seeded = false;
  bool limit_exempt = false;  // a diagnostic thread (ExemptThisThreadFromHardLimit)
  bool accounting = false;    // keeps exact accounting: countdown is 0, see exact_countdown
  ExponentialStride rng;
};
// initial-exec: no allocation on first use, even when preloaded. One struct:
// one GOT load for its offset. constinit: no TLS wrapper call from the files
// that only declare it.
CPPDIAG_HOOK_STATE extern constinit
    __attribute__((tls_model("initial-exec"))) thread_local ThreadState t_state;

// The thread's sampling countdown, wherever it is kept.
[[maybe_unused]] __attribute__((always_inline)) inline int64_t& SampleCountdown(ThreadState& ts) {
  return ts.accounting ? ts.exact_countdown : ts.countdown;
}

// The fast paths read g_fast through these: relaxed loads, each the memory
// operand of the instruction that uses it. GCC emits a relaxed atomic load
// as a mov of its own and never folds it into a compare or a subtraction
// (2 instructions in free, 1 in malloc, a third of the profiler's cost); on
// x86-64 an aligned word read by one instruction is what a relaxed load is.
// Not volatile: like relaxed loads, two reads with no store between may merge.
// Exact's "memory" clobber only orders it for the compiler (no instruction):
// without it GCC keeps the countdown in a register across the flag's test
// and writes it back with a store of its own, where it otherwise subtracts
// in memory.
#if defined(__x86_64__)
[[maybe_unused]] __attribute__((always_inline)) inline bool Exact() {
  bool set;
  asm("cmpb $0, %1" : "=@ccnz"(set) : "m"(g_fast.exact) : "memory");
  return set;
}
// x - bound, with bound read by the subtraction.
[[maybe_unused]] __attribute__((always_inline)) inline uintptr_t MinusRelaxed(
    uintptr_t x, const std::atomic<uintptr_t>& bound) {
  asm("sub %1, %0" : "+r"(x) : "m"(bound) : "cc");
  return x;
}
// x < bound (unsigned), with bound read by the compare.
[[maybe_unused]] __attribute__((always_inline)) inline bool BelowRelaxed(
    uintptr_t x, const std::atomic<uintptr_t>& bound) {
  bool below;
  asm("cmp %1, %2" : "=@ccb"(below) : "m"(bound), "r"(x));
  return below;
}
#else
[[maybe_unused]] inline bool Exact() { return g_fast.exact.load(std::memory_order_relaxed); }
[[maybe_unused]] inline uintptr_t MinusRelaxed(uintptr_t x, const std::atomic<uintptr_t>& bound) {
  return x - bound.load(std::memory_order_relaxed);
}
[[maybe_unused]] inline bool BelowRelaxed(uintptr_t x, const std::atomic<uintptr_t>& bound) {
  return x < bound.load(std::memory_order_relaxed);
}
#endif

// A thread takes up exact accounting in its first slow path once it is on
// (EnableExactHeapAccounting switches the thread that turns it on at once),
// so that the fast path tests one word whether it is on or not: the sampling
// countdown moves to exact_countdown and countdown goes to 0. Until then the
// thread's allocations go uncounted while its frees are counted (free() tests
// addresses, not threads): accounting.h bounds that undercount.
[[maybe_unused]] __attribute__((always_inline)) inline void SwitchIfExact(ThreadState& ts) {
  if (__builtin_expect(!ts.accounting, 0) && Exact()) {
    ts.exact_countdown = ts.countdown;
    ts.countdown = 0;
    ts.accounting = true;
  }
}

}  // namespace cppdiag::heap::hooks
