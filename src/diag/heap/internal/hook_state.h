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
  std::atomic<bool> exact{false};  // exact accounting: every call takes the slow path
  std::atomic<uint64_t> limit{0};  // the hard limit, read by every allocation with it on
  // The live table's filter; nullptr until the profiler starts.
  std::atomic<const std::atomic<uint64_t>*> filter{nullptr};
};
CPPDIAG_HOOK_STATE extern FastFlags g_fast;

struct ThreadState {
  int64_t countdown = 0;  // bytes before the next sample; the only field the fast path touches
  int64_t stride = 0;     // countdown's value at the last draw: stride - countdown = bytes since
  uint64_t alloc_pending = 0;  // exact accounting, not yet folded
  uint64_t free_pending = 0;
  bool in_hook = false;
  bool seeded = false;
  bool limit_exempt = false;  // a diagnostic thread (ExemptThisThreadFromHardLimit)
  ExponentialStride rng;
};
// initial-exec: no allocation on first use, even when preloaded. One struct:
// one GOT load for its offset. constinit: no TLS wrapper call from the files
// that only declare it.
CPPDIAG_HOOK_STATE extern constinit
    __attribute__((tls_model("initial-exec"))) thread_local ThreadState t_state;

[[maybe_unused]] inline bool Exact() { return g_fast.exact.load(std::memory_order_relaxed); }

}  // namespace cppdiag::heap::hooks
