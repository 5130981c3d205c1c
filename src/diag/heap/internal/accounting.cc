// Exact accounting and the hard limit: the API of allocation_hooks.h. The
// per-call part is inline in accounting.h.
#include "diag/heap/internal/accounting.h"

#include <malloc.h>

#include "diag/heap/allocation_hooks.h"
#include "diag/heap/heap_profiler.h"
#include "diag/heap/internal/profiler_hooks.h"

namespace cppdiag::heap {

namespace hooks {
alignas(64) std::atomic<int64_t> g_in_use{0};
std::atomic<uint64_t> g_freed{0};
std::atomic<uint64_t> g_failures{0};
}  // namespace hooks

using hooks::g_fast;

int64_t hooks::FoldNow(ThreadState& ts) noexcept {
  int64_t allocated = ts.budget_start - ts.budget;
  int64_t freed = kFoldBytes - ts.free_left;
  int64_t delta = allocated - freed;
  int64_t total = g_in_use.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (freed != 0) g_freed.fetch_add(static_cast<uint64_t>(freed), std::memory_order_relaxed);
  ts.free_left = kFoldBytes;
  uint64_t limit = g_fast.limit.load(std::memory_order_relaxed);
  int64_t room = kFoldBytes;
  if (limit != 0 && !ts.limit_exempt) {
    // A limit below the total (or beyond int64) leaves no room (or all).
    uint64_t used = total < 0 ? 0 : static_cast<uint64_t>(total);
    uint64_t left = limit > used ? limit - used : 0;
    if (left < static_cast<uint64_t>(kFoldBytes)) room = static_cast<int64_t>(left);
  }
  ts.budget = ts.budget_start = room;
  return total;
}

bool hooks::AdmitSlow(ThreadState& ts, size_t size) noexcept {
  int64_t total = FoldNow(ts);
  uint64_t limit = g_fast.limit.load(std::memory_order_relaxed);
  if (limit == 0 || ts.limit_exempt) return true;
  uint64_t used = total < 0 ? 0 : static_cast<uint64_t>(total);
  if (used <= limit && size <= limit - used) return true;
  g_failures.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void EnableExactHeapAccounting() {
  static std::atomic<bool> claimed{false};
  if (claimed.exchange(true)) return;
  // Blocks allocated before now will be freed through the accounted path:
  // start from glibc's own in-use figure (chunk sizes, as the hooks count;
  // mmapped blocks with their alignment offsets) plus the sampled blocks (the
  // region's, not glibc's) so that InUse stays >= 0.
  struct mallinfo2 mi = mallinfo2();
  hooks::g_in_use.fetch_add(
      static_cast<int64_t>(mi.uordblks + mi.hblkhd + hooks::g_region.live_bytes()),
      std::memory_order_relaxed);
  hooks::SetFreeBounds(true);
  g_fast.exact.store(true, std::memory_order_release);
  hooks::SwitchIfExact(hooks::t_state);  // this thread from its next allocation on
}

bool HeapAccountingExact() { return g_fast.exact.load(std::memory_order_acquire); }

void SetHeapHardLimit(uint64_t bytes) {
  if (bytes != 0) EnableExactHeapAccounting();
  g_fast.limit.store(bytes, std::memory_order_relaxed);
}
uint64_t HeapHardLimit() { return g_fast.limit.load(std::memory_order_relaxed); }
void ExemptThisThreadFromHardLimit() { hooks::t_state.limit_exempt = true; }
uint64_t HeapInUseBytes() {
  if (!HeapAccountingExact()) return 0;
  int64_t v = hooks::InUse();
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}
uint64_t HeapLimitFailures() { return hooks::g_failures.load(std::memory_order_relaxed); }
uint64_t HeapTotalFreedBytes() {
  return HeapAccountingExact() ? hooks::g_freed.load(std::memory_order_relaxed) : 0;
}

}  // namespace cppdiag::heap
