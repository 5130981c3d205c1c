// Exact accounting and the heap hard limit, the hooks' part (the API is in
// allocation_hooks.h). Private to diag/heap.
//
// Only once exact accounting is on (EnableExactHeapAccounting, or a non-zero
// SetHeapHardLimit) do the entry points call these: each thread adds usable
// sizes to its own pending counters and folds them into one shared word every
// kFoldBytes of its traffic; at each fold it also learns how much room the
// hard limit leaves, and admits allocations against that until the next fold
// (see Admit for the bound this puts on the error).
//
// Runs inside malloc: no allocation, no locks, async-signal-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "diag/heap/internal/hook_state.h"

namespace cppdiag::heap::hooks {

// Live usable bytes: glibc's in-use figure when accounting started, plus the
// threads' folded deltas. One word, so that the limit check reads one line
// (which moves between cores only when a thread folds).
CPPDIAG_HOOK_STATE extern std::atomic<int64_t> g_in_use;
CPPDIAG_HOOK_STATE extern std::atomic<uint64_t> g_freed;  // usable bytes freed since it started
CPPDIAG_HOOK_STATE extern std::atomic<uint64_t> g_failures;

// Per-thread deltas folded into the globals every 256 KiB of the thread's
// traffic (allocated plus freed).
inline constexpr uint64_t kFoldBytes = 256 * 1024;

// Folds the thread's pending deltas now, and learns from the new total how
// much the thread may still allocate under the hard limit.
inline void FoldNow(ThreadState& ts) {
  int64_t delta = static_cast<int64_t>(ts.alloc_pending - ts.free_pending);
  int64_t total = g_in_use.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (ts.free_pending != 0) g_freed.fetch_add(ts.free_pending, std::memory_order_relaxed);
  ts.alloc_pending = ts.free_pending = 0;
  uint64_t limit = g_fast.limit.load(std::memory_order_relaxed);
  ts.room_limit = limit;
  ts.room = static_cast<int64_t>(limit) - (total < 0 ? 0 : total);
}

inline void Fold(ThreadState& ts) {
  if (ts.alloc_pending + ts.free_pending > kFoldBytes) FoldNow(ts);
}
[[maybe_unused]] inline void AccountAlloc(uint64_t n) {
  ThreadState& ts = t_state;
  ts.alloc_pending += n;
  Fold(ts);
}
[[maybe_unused]] inline void AccountFree(uint64_t n) {
  ThreadState& ts = t_state;
  ts.free_pending += n;
  Fold(ts);
}

inline int64_t InUse() { return g_in_use.load(std::memory_order_relaxed); }

// The limit check when the thread's room does not answer it: folds, learns
// the room again, and counts a refusal.
CPPDIAG_HOOK_STATE bool AdmitSlow(ThreadState& ts, size_t size);

// False when allocating `size` more bytes would cross the hard limit. Reads
// no shared counter: the room the thread learned at its last fold answers,
// unless the limit changed since, or the request is larger than a fold (then
// the shared total is read first). So the limit may be overshot by what the
// other threads have not folded yet plus what each admitted since its last
// fold: under 2 x 256 KiB per thread.
[[maybe_unused]] inline bool Admit(size_t size) {
  uint64_t limit = g_fast.limit.load(std::memory_order_relaxed);
  if (limit == 0) return true;
  ThreadState& ts = t_state;
  if (ts.limit_exempt) return true;
  int64_t pending = static_cast<int64_t>(ts.alloc_pending - ts.free_pending);
  if (__builtin_expect(ts.room_limit == limit && size <= kFoldBytes &&
                           pending + static_cast<int64_t>(size) <= ts.room,
                       1)) {
    return true;
  }
  return AdmitSlow(ts, size);
}

}  // namespace cppdiag::heap::hooks
