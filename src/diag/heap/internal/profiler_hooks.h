// The sampling profiler's part of the allocation hooks (the API is in
// heap_profiler.h): the per-thread byte countdown, and the sample taken when
// it runs out: the allocation is served from the sample region
// (sample_region.h), its stack walked and recorded in the live table; when
// such a block is freed it leaves the table and its slot goes back to the
// region. Private to diag/heap.
//
// Runs inside malloc: no allocation, no stdio; the live table's spinlock is
// the only lock, taken for one insert or remove.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "diag/heap/internal/hook_state.h"
#include "diag/heap/internal/sample_region.h"
#include "diag/heap/sampler.h"

namespace cppdiag::heap::hooks {

// The live table; nullptr until the profiler starts.
CPPDIAG_HOOK_STATE extern std::atomic<LiveTable*> g_table;
// Where sampled blocks live; empty (Contains is false) until the profiler starts.
CPPDIAG_HOOK_STATE extern SampleRegion g_region;

// Requests this large are never sampled (and are bound to fail).
inline constexpr size_t kNeverSampled = size_t{1} << 62;

// Runs when the thread's countdown reached 0 (already charged with `size`).
// Returns a block of the region for the allocation, recorded in the live
// table, or nullptr: the caller allocates from glibc (no profiler, the
// thread's first draw, a nested call, the region or table full).
CPPDIAG_HOOK CPPDIAG_HOOK_STATE __attribute__((noinline)) void* SampleAlloc(size_t size,
                                                                            size_t alignment,
                                                                            bool zero) noexcept;

// The slow paths' sampling step, before they allocate (the fast paths inline
// the decrement). Always inlined and in the hooks' section: an out-of-line
// copy (-O0) would be the frame SampleAlloc returns into, and the walk must
// skip it.
[[maybe_unused]] CPPDIAG_HOOK __attribute__((always_inline)) inline void* MaybeSample(
    size_t size, size_t alignment, bool zero) {
  ThreadState& ts = t_state;
  SwitchIfExact(ts);
  if (size >= kNeverSampled) return nullptr;
  int64_t& countdown = SampleCountdown(ts);
  countdown -= static_cast<int64_t>(size);
  if (__builtin_expect(countdown > 0, 1)) return nullptr;
  return SampleAlloc(size, alignment, zero);
}

// free() of a block of the region (g_region.Contains(p)): drops it from the
// live table and gives its slot back. False, and nothing done, when `p` is
// not a live sampled block (a double or invalid free).
CPPDIAG_HOOK_STATE bool FreeSampled(void* p) noexcept;

}  // namespace cppdiag::heap::hooks
