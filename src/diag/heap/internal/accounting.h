// Exact accounting and the heap hard limit, the hooks' part (the API is in
// allocation_hooks.h). Private to diag/heap.
//
// Only once exact accounting is on (EnableExactHeapAccounting, or a non-zero
// SetHeapHardLimit) do the entry points call these. What is counted is
// glibc's chunk size (ChunkBytes: the usable size plus the chunk's header),
// or a sampled block's slot size; the same figure when the block is
// allocated and when it is freed. Each thread takes it from its budget: the
// traffic (bytes allocated plus freed) it may do before it folds into one
// shared word, at most kFoldBytes and at most the room the hard limit left
// when it last folded; a free also adds it to the thread's free_pending, so
// that the fold tells the bytes allocated (the traffic less those freed) from
// the freed. A budget below 0 folds at once.
//
// The limit's guarantee: a thread admits a request only within its budget
// (or, past it, against the shared total it folds first), so what it holds
// unfolded never exceeds the room it saw, plus the rounding of the block
// that ran the budget out; what the other threads hold unfolded, under
// kFoldBytes each (plus one block's rounding), is what the live heap may
// pass the limit by.
//
// Runs inside malloc: no allocation, no locks, async-signal-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "diag/heap/internal/hook_state.h"

namespace cppdiag::heap::hooks {

// Live bytes (the figure above): glibc's in-use figure when accounting
// started, plus the threads' folded deltas. One word, so that a fold touches
// one line.
CPPDIAG_HOOK_STATE extern std::atomic<int64_t> g_in_use;
CPPDIAG_HOOK_STATE extern std::atomic<uint64_t> g_freed;  // bytes freed since it started
CPPDIAG_HOOK_STATE extern std::atomic<uint64_t> g_failures;

// Per-thread deltas folded into the globals every 256 KiB of the thread's
// traffic (allocated plus freed), sooner near the limit.
inline constexpr int64_t kFoldBytes = int64_t{256} << 10;

// glibc's chunk size (malloc.c): the size word just before the block, flags
// in its low 3 bits. For an mmapped chunk too (its size excludes the
// alignment offset kept in the word before, as free reads it).
__attribute__((always_inline)) inline size_t ChunkBytes(const void* p) {
  return reinterpret_cast<const size_t*>(p)[-1] & ~size_t{7};
}

// Folds the thread's pending deltas into the globals now, and gives it a new
// budget from the total and the limit. Returns the new total.
CPPDIAG_HOOK_STATE int64_t FoldNow(ThreadState& ts) noexcept;

[[maybe_unused]] __attribute__((always_inline)) inline void AccountAlloc(uint64_t n) {
  ThreadState& ts = t_state;
  ts.budget -= static_cast<int64_t>(n);
  if (__builtin_expect(ts.budget < 0, 0)) FoldNow(ts);
}
[[maybe_unused]] __attribute__((always_inline)) inline void AccountFree(uint64_t n) {
  ThreadState& ts = t_state;
  ts.free_pending += n;
  ts.budget -= static_cast<int64_t>(n);
  if (__builtin_expect(ts.budget < 0, 0)) FoldNow(ts);
}

inline int64_t InUse() { return g_in_use.load(std::memory_order_relaxed); }

// Admit's answer when the budget does not cover the request: folds, then
// compares with the limit itself, and counts a refusal.
CPPDIAG_HOOK_STATE bool AdmitSlow(ThreadState& ts, size_t size) noexcept;

// False when allocating `size` more bytes would cross the hard limit; the
// slow paths ask before they allocate (the exact fast paths compare with the
// budget themselves). Reads no shared counter while the budget covers the
// request.
[[maybe_unused]] __attribute__((always_inline)) inline bool Admit(size_t size) {
  ThreadState& ts = t_state;
  if (__builtin_expect(size <= kFoldBytes && static_cast<int64_t>(size) <= ts.budget, 1)) {
    return true;
  }
  return AdmitSlow(ts, size);
}

}  // namespace cppdiag::heap::hooks
