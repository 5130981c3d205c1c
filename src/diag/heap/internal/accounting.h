// Exact accounting and the heap hard limit, the hooks' part (the API is in
// allocation_hooks.h). Private to diag/heap.
//
// Only once exact accounting is on (EnableExactHeapAccounting, or a non-zero
// SetHeapHardLimit) do the entry points call these: each thread adds usable
// sizes to its own pending counters and folds them into one shared word every
// kFoldBytes, and an allocation is admitted against the shared word plus the
// thread's own pending delta.
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

// Per-thread deltas folded into the globals every 256 KiB.
inline constexpr uint64_t kFoldBytes = 256 * 1024;

inline void Fold(ThreadState& ts) {
  if (ts.alloc_pending + ts.free_pending > kFoldBytes) {
    g_in_use.fetch_add(static_cast<int64_t>(ts.alloc_pending - ts.free_pending),
                       std::memory_order_relaxed);
    g_freed.fetch_add(ts.free_pending, std::memory_order_relaxed);
    ts.alloc_pending = ts.free_pending = 0;
  }
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

// False when allocating `size` more bytes would cross the hard limit.
[[maybe_unused]] inline bool Admit(size_t size) {
  uint64_t limit = g_fast.limit.load(std::memory_order_relaxed);
  if (limit == 0) return true;
  const ThreadState& ts = t_state;
  if (ts.limit_exempt) return true;
  int64_t in_use = InUse() + static_cast<int64_t>(ts.alloc_pending - ts.free_pending);
  if (in_use < 0) in_use = 0;
  if (static_cast<uint64_t>(in_use) + size <= limit) return true;
  g_failures.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace cppdiag::heap::hooks
