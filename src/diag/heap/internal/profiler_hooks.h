// The sampling profiler's part of the allocation hooks (the API is in
// heap_profiler.h): the per-thread byte countdown, the sample taken when it
// runs out (a stack walk and an insert into the live table), and the removal
// of a sampled block when it is freed. Private to diag/heap.
//
// Runs inside malloc: no allocation, no stdio; the live table's spinlock is
// the only lock, taken for one insert or remove.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "diag/heap/internal/hook_state.h"
#include "diag/heap/sampler.h"

namespace cppdiag::heap::hooks {

// The live table; nullptr until the profiler starts.
CPPDIAG_HOOK_STATE extern std::atomic<LiveTable*> g_table;

// Runs when the thread's countdown reached 0 (already charged with `size`):
// records `p` in the live table (or draws the thread's first stride).
CPPDIAG_HOOK CPPDIAG_HOOK_STATE __attribute__((noinline)) void SampleSlow(void* p,
                                                                          size_t size) noexcept;

// The slow paths' sampling step (the fast paths inline the decrement).
// Always inlined and in the hooks' section: an out-of-line copy (-O0) would
// be the frame SampleSlow returns into, and the walk must skip it.
[[maybe_unused]] CPPDIAG_HOOK __attribute__((always_inline)) inline void CountAlloc(void* p,
                                                                                    size_t size) {
  ThreadState& ts = t_state;
  // Only for blocks that exist, so size < 2^63: no overflow.
  ts.countdown -= static_cast<int64_t>(size);
  if (ts.countdown <= 0) SampleSlow(p, size);
}

// Before `p` is freed (or reallocated): drops it from the live table if it
// was sampled.
[[maybe_unused]] inline void ForgetIfSampled(void* p) {
  LiveTable* table = g_table.load(std::memory_order_relaxed);
  if (table != nullptr && table->MaybeSampled(reinterpret_cast<uintptr_t>(p))) {
    table->Remove(reinterpret_cast<uintptr_t>(p));
  }
}

}  // namespace cppdiag::heap::hooks
