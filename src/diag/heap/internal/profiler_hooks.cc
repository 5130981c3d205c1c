// The sampling profiler in the hooks: samples served from the region and
// recorded in the live table, start and period, free()'s bounds, fork
// handlers, and the requested-bytes figure the countdown gives. SampleAlloc
// and FreeSampled run inside malloc: no allocation, no stdio.
#include "diag/heap/internal/profiler_hooks.h"

#include <pthread.h>

#include <new>

#include "common/async_safe.h"
#include "diag/heap/heap_profiler.h"

extern "C" {
__attribute__((visibility("hidden"))) extern const char __start_cppdiag_hooks[];
__attribute__((visibility("hidden"))) extern const char __stop_cppdiag_hooks[];
}

namespace cppdiag::heap {

namespace hooks {
std::atomic<LiveTable*> g_table{nullptr};
constinit SampleRegion g_region;
}  // namespace hooks

using hooks::g_region;
using hooks::t_state;
using hooks::ThreadState;

namespace {

std::atomic<uint64_t> g_period{0};
alignas(LiveTable) unsigned char g_table_storage[sizeof(LiveTable)];
std::atomic<uint64_t> g_seed_counter{0};
// Requested bytes, flushed at each thread's sampling points.
alignas(64) std::atomic<uint64_t> g_requested{0};

// While the profiler is off, threads look again at the period every 1 MiB.
constexpr int64_t kOffRecheckBytes = 1 << 20;

// Hook frames the walk may meet before the caller (hook, slow path, sampler).
constexpr size_t kHookFrames = 4;

inline bool InHooks(uint64_t pc) {
  return pc >= reinterpret_cast<uintptr_t>(__start_cppdiag_hooks) &&
         pc < reinterpret_cast<uintptr_t>(__stop_cppdiag_hooks);
}

void AtForkPrepare() {
  if (LiveTable* t = hooks::g_table.load()) t->Lock();
}
void AtForkParent() {
  if (LiveTable* t = hooks::g_table.load()) t->Unlock();
}
void AtForkChild() {
  if (LiveTable* t = hooks::g_table.load()) t->ResetLockAfterFork();
  g_region.ResetLocksAfterFork();
  t_state.tid = 0;  // the child's thread has an id of its own
}

// Registered when the library loads, before the program registers its own:
// prepare handlers run in reverse order of registration, so ours runs last
// and holds the table's lock only across fork() itself, never while another
// prepare handler frees a (possibly sampled) block.
__attribute__((constructor)) void RegisterForkHandlers() {
  pthread_atfork(AtForkPrepare, AtForkParent, AtForkChild);
}

}  // namespace

namespace hooks {

CPPDIAG_HOOK void* SampleAlloc(size_t size, size_t alignment, bool zero) noexcept {
  ThreadState& ts = t_state;
  int64_t& countdown = SampleCountdown(ts);
  g_requested.fetch_add(static_cast<uint64_t>(ts.stride - countdown), std::memory_order_relaxed);
  // Counted: an allocation nested below (a signal handler's, interrupting
  // this one) must count only its own bytes.
  ts.stride = countdown;
  int64_t next = kOffRecheckBytes;
  if (ts.in_hook) {  // nested in a sample (a handler's): no second insert under the table lock
    ts.stride = countdown = next;
    return nullptr;
  }
  ts.in_hook = true;
  void* p = nullptr;
  uint64_t period = g_period.load(std::memory_order_relaxed);
  LiveTable* table = g_table.load(std::memory_order_acquire);
  if (period == 0 || table == nullptr) {
    // next stays kOffRecheckBytes
  } else if (!ts.seeded) {  // the first draw samples nothing (as abseil)
    ts.rng.Seed(reinterpret_cast<uintptr_t>(&ts) ^
                (g_seed_counter.fetch_add(1, std::memory_order_relaxed) * 0x9E3779B97F4A7C15ull));
    ts.seeded = true;
    next = ts.rng.Next(period);
  } else {
    p = g_region.Alloc(size, alignment, zero);
    if (p == nullptr) {
      table->NoteDropped();  // too large for the region, or its class full: glibc serves it
    } else {
      uint64_t pcs[kMaxFrames + kHookFrames];
      size_t depth = CaptureStack(pcs, kMaxFrames + kHookFrames, 0);
      size_t first = 0;
      while (first < depth && InHooks(pcs[first])) ++first;
      size_t kept = depth - first;
      if (ts.tid == 0) ts.tid = CurrentTid();
      if (!table->Insert(reinterpret_cast<uintptr_t>(p), size, pcs + first,
                         kept > kMaxFrames ? kMaxFrames : kept, period, MonotonicNs(), ts.tid)) {
        g_region.Free(p);  // the table is full: glibc serves it
        p = nullptr;
      }
    }
    next = ts.rng.Next(period);
  }
  ts.stride = countdown = next;
  ts.in_hook = false;
  return p;
}

bool FreeSampled(void* p) noexcept {
  LiveTable* table = g_table.load(std::memory_order_acquire);
  if (table == nullptr || table->Remove(reinterpret_cast<uintptr_t>(p)) < 0) return false;
  g_region.Free(p);  // after the table: once here, the slot may be handed out again
  return true;
}

void SetFreeBounds(bool all) {
  static std::atomic<bool> lock{false};
  static bool all_addresses = false;
  while (lock.exchange(true, std::memory_order_acquire)) __builtin_ia32_pause();
  all_addresses = all_addresses || all;
  uintptr_t lo = 0, region = 0;
  if (g_region.ok()) {
    lo = g_region.lo();
    region = g_region.span();
  }
  uintptr_t span = all_addresses ? ~uintptr_t{0} : region;  // ~0: every free is accounted
  // Never a moment in which a region block would pass as glibc's: the
  // region's blocks exist only once the table is published, after this; the
  // only change after that is to "all", which widens free_span alone.
  g_fast.region_span.store(region, std::memory_order_release);
  g_fast.free_span.store(span, std::memory_order_release);
  g_fast.free_lo.store(lo, std::memory_order_release);
  lock.store(false, std::memory_order_release);
}

}  // namespace hooks

uint64_t HeapTotalAllocatedBytes() {
  ThreadState& ts = t_state;  // this thread's bytes since its last flush
  int64_t own = ts.stride - hooks::SampleCountdown(ts);
  return g_requested.load(std::memory_order_relaxed) + (own > 0 ? static_cast<uint64_t>(own) : 0);
}

uint64_t HeapSampledBlockBytes() { return g_region.live_bytes(); }

LiveTable* ProfilerTable() { return hooks::g_table.load(std::memory_order_acquire); }

bool StartHeapProfiler(uint64_t period_bytes) {
  static std::atomic<bool> started{false};
  if (period_bytes == 0) {
    g_period.store(0, std::memory_order_relaxed);
    return true;
  }
  if (!started.exchange(true)) {
    if (!hooks::g_region.Init()) {
      started.store(false);
      return false;
    }
    auto* t = new (g_table_storage) LiveTable(kLiveCapacity, kStackCapacity);
    if (!t->ok()) {
      started.store(false);
      return false;
    }
    // free()'s bounds before the table: a block sampled once the table is
    // visible must take free()'s slow path, or it would reach glibc.
    hooks::SetFreeBounds(false);
    hooks::g_table.store(t, std::memory_order_release);
  }
  g_period.store(period_bytes, std::memory_order_relaxed);
  return hooks::g_table.load() != nullptr;
}

uint64_t HeapSamplePeriod() {
  return hooks::g_table.load(std::memory_order_relaxed) == nullptr
             ? 0
             : g_period.load(std::memory_order_relaxed);
}

void ResetThreadSampler() {
  ThreadState& ts = t_state;
  int64_t& countdown = hooks::SampleCountdown(ts);
  int64_t own = ts.stride - countdown;
  if (own > 0) g_requested.fetch_add(static_cast<uint64_t>(own), std::memory_order_relaxed);
  ts.stride = countdown = 0;
  ts.seeded = false;
}

}  // namespace cppdiag::heap
