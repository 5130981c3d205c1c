// Exact accounting and the heap hard limit, the hooks' part (the API is in
// allocation_hooks.h). Private to diag/heap.
//
// Only once exact accounting is on (EnableExactHeapAccounting, or a non-zero
// SetHeapHardLimit) do the entry points call these. What is counted is
// glibc's chunk size (ChunkBytes: the usable size plus the chunk's header),
// or a sampled block's slot size; the same figure when the block is
// allocated and when it is freed. Each thread counts in its own words and
// folds them into one shared word when they run out: `budget`, the bytes it
// may allocate before it folds (at most kFoldBytes, and at most the room the
// hard limit left when it last folded), and `free_left`, the bytes it may
// free (kFoldBytes). Both below 0: fold at once.
//
// The limit's guarantee: a block the exact path got from glibc is counted
// against the budget; one that runs it out makes the thread fold and compare
// the total with the limit, and a block that would cross it goes back to
// glibc (the caller gets ENOMEM). The slow paths ask before they allocate
// (Admit). So what a thread holds unfolded never exceeds the room it saw at
// its last fold plus the block that ran the budget out; what the other
// threads hold unfolded, under kFoldBytes each (plus one block), is what the
// live heap may pass the limit by.
//
// When accounting is turned on while threads run, each other thread takes
// it up at its next slow path (hook_state.h: SwitchIfExact), after at most
// its sampling countdown's bytes (the period on average, 512 KiB by default;
// 1 MiB with the profiler off); what it allocates until then and frees later
// is counted as freed only, so the figure may fall short of the truth by
// that much per thread, for good. Threads created after, and the thread that
// turns it on, count from their first allocation (the preload library
// starts the runtime, which reads CPPDIAG_HEAP_HARD_LIMIT, before main).
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
  ts.free_left -= static_cast<int64_t>(n);
  if (__builtin_expect(ts.free_left < 0, 0)) FoldNow(ts);
}

inline int64_t InUse() { return g_in_use.load(std::memory_order_relaxed); }

// Admit's answer when the budget does not cover the request: folds, then
// compares with the limit itself, and counts a refusal.
CPPDIAG_HOOK_STATE bool AdmitSlow(ThreadState& ts, size_t size) noexcept;

// False when allocating `size` more bytes would cross the hard limit; the
// slow paths ask before they allocate (the exact fast paths count after, see
// above). Reads no shared counter while the budget covers the request.
[[maybe_unused]] __attribute__((always_inline)) inline bool Admit(size_t size) {
  ThreadState& ts = t_state;
  if (__builtin_expect(size <= kFoldBytes && static_cast<int64_t>(size) <= ts.budget, 1)) {
    return true;
  }
  return AdmitSlow(ts, size);
}

}  // namespace cppdiag::heap::hooks
