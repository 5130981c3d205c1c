// Interposes glibc's allocation functions and the operator new/delete family.
// Everything here runs inside malloc: no allocation, no locks held across
// calls out, no stdio.
//
// The fast paths (no hard limit, no exact accounting, no sample due) do one
// thread-local decrement or one filter test and then TAIL-CALL glibc: no work
// after the call, so the compiler emits a jmp. Everything else goes to a
// noinline *Slow function. The hooks and the slow functions live in their own
// section: the sampler drops the leading frames that return into it, so a
// sample starts at the caller of malloc/new however the compiler inlined or
// tail-called (an -O0 build keeps every frame).
#include "diag/heap/allocation_hooks.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <new>

#include "diag/heap/heap_profiler.h"
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

// Code whose return addresses the sampler drops from the top of a stack.
#define CPPDIAG_HOOK __attribute__((section("cppdiag_hooks")))
extern "C" {
__attribute__((visibility("hidden"))) extern const char __start_cppdiag_hooks[];
__attribute__((visibility("hidden"))) extern const char __stop_cppdiag_hooks[];
}

namespace cppdiag::heap {
namespace {

// What the fast paths read, alone on a cache line (the counters below are
// written by every fold).
struct alignas(64) FastFlags {
  std::atomic<bool> exact{false};  // exact accounting: every call takes the slow path
  std::atomic<uint64_t> limit{0};  // the hard limit, read by every allocation with it on
  // The live table's filter; nullptr until the profiler starts.
  std::atomic<const std::atomic<uint64_t>*> filter{nullptr};
};
FastFlags g_fast;

// ---- exact accounting (only once enabled) ----

// Live usable bytes: glibc's in-use figure when accounting started, plus the
// threads' folded deltas. One word, so that the limit check reads one line
// (which moves between cores only when a thread folds).
alignas(64) std::atomic<int64_t> g_in_use{0};
std::atomic<uint64_t> g_freed{0};  // usable bytes freed since accounting started
std::atomic<uint64_t> g_failures{0};
// Requested bytes, flushed at each thread's sampling points.
alignas(64) std::atomic<uint64_t> g_requested{0};

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
// one GOT load for its offset.
__attribute__((tls_model("initial-exec"))) thread_local ThreadState t_state;

[[maybe_unused]] inline bool Exact() { return g_fast.exact.load(std::memory_order_relaxed); }

// Per-thread deltas folded into the globals every 256 KiB.
constexpr uint64_t kFoldBytes = 256 * 1024;

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

int64_t InUse() { return g_in_use.load(std::memory_order_relaxed); }

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

// ---- sampling ----

std::atomic<uint64_t> g_period{0};
std::atomic<LiveTable*> g_table{nullptr};
alignas(LiveTable) unsigned char g_table_storage[sizeof(LiveTable)];
std::atomic<uint64_t> g_seed_counter{0};

// While the profiler is off, threads look again at the period every 1 MiB.
constexpr int64_t kOffRecheckBytes = 1 << 20;

// Hook frames the walk may meet before the caller (hook, slow path, sampler).
constexpr size_t kHookFrames = 4;

inline bool InHooks(uint64_t pc) {
  return pc >= reinterpret_cast<uintptr_t>(__start_cppdiag_hooks) &&
         pc < reinterpret_cast<uintptr_t>(__stop_cppdiag_hooks);
}

// Runs when the thread's countdown reached 0 (already charged with `size`).
CPPDIAG_HOOK __attribute__((noinline)) void SampleSlow(void* p, size_t size) noexcept {
  ThreadState& ts = t_state;
  g_requested.fetch_add(static_cast<uint64_t>(ts.stride - ts.countdown), std::memory_order_relaxed);
  // Counted: an allocation nested below (a signal handler's, interrupting
  // this one) must count only its own bytes.
  ts.stride = ts.countdown;
  int64_t next = kOffRecheckBytes;
  if (ts.in_hook) {  // nested in a sample (a handler's): no second insert under the table lock
    ts.stride = ts.countdown = next;
    return;
  }
  ts.in_hook = true;
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
    uint64_t pcs[kMaxFrames + kHookFrames];
    size_t depth = CaptureStack(pcs, kMaxFrames + kHookFrames, 0);
    size_t first = 0;
    while (first < depth && InHooks(pcs[first])) ++first;
    size_t kept = depth - first;
    table->Insert(reinterpret_cast<uintptr_t>(p), size, pcs + first,
                  kept > kMaxFrames ? kMaxFrames : kept, period);
    next = ts.rng.Next(period);
  }
  ts.stride = ts.countdown = next;
  ts.in_hook = false;
}

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

[[maybe_unused]] inline void ForgetIfSampled(void* p) {
  LiveTable* table = g_table.load(std::memory_order_relaxed);
  if (table != nullptr && table->MaybeSampled(reinterpret_cast<uintptr_t>(p))) {
    table->Remove(reinterpret_cast<uintptr_t>(p));
  }
}

void AtForkPrepare() {
  if (LiveTable* t = g_table.load()) t->Lock();
}
void AtForkParent() {
  if (LiveTable* t = g_table.load()) t->Unlock();
}
void AtForkChild() {
  if (LiveTable* t = g_table.load()) t->ResetLockAfterFork();
}

// Registered when the library loads, before the program registers its own:
// prepare handlers run in reverse order of registration, so ours runs last
// and holds the table's lock only across fork() itself, never while another
// prepare handler frees a (possibly sampled) block.
__attribute__((constructor)) void RegisterForkHandlers() {
  pthread_atfork(AtForkPrepare, AtForkParent, AtForkChild);
}

}  // namespace

bool HooksActive() { return CPPDIAG_INTERPOSE_MALLOC != 0; }

void EnableExactHeapAccounting() {
  static std::atomic<bool> claimed{false};
  if (claimed.exchange(true)) return;
  // Blocks allocated before now will be freed through the accounted path:
  // start from glibc's own in-use figure (chunk sizes, so a little above the
  // usable sizes the hooks count) so that InUse stays >= 0.
  struct mallinfo2 mi = mallinfo2();
  g_in_use.fetch_add(static_cast<int64_t>(mi.uordblks + mi.hblkhd), std::memory_order_relaxed);
  g_fast.exact.store(true, std::memory_order_release);
}

bool HeapAccountingExact() { return g_fast.exact.load(std::memory_order_acquire); }

void SetHeapHardLimit(uint64_t bytes) {
  if (bytes != 0) EnableExactHeapAccounting();
  g_fast.limit.store(bytes, std::memory_order_relaxed);
}
uint64_t HeapHardLimit() { return g_fast.limit.load(std::memory_order_relaxed); }
void ExemptThisThreadFromHardLimit() { t_state.limit_exempt = true; }
uint64_t HeapInUseBytes() {
  if (!HeapAccountingExact()) return 0;
  int64_t v = InUse();
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}
uint64_t HeapLimitFailures() { return g_failures.load(std::memory_order_relaxed); }
uint64_t HeapTotalAllocatedBytes() {
  const ThreadState& ts = t_state;  // this thread's bytes since its last flush
  int64_t own = ts.stride - ts.countdown;
  return g_requested.load(std::memory_order_relaxed) + (own > 0 ? static_cast<uint64_t>(own) : 0);
}
uint64_t HeapTotalFreedBytes() {
  return HeapAccountingExact() ? g_freed.load(std::memory_order_relaxed) : 0;
}

LiveTable* ProfilerTable() { return g_table.load(std::memory_order_acquire); }

bool StartHeapProfiler(uint64_t period_bytes) {
  static std::atomic<bool> started{false};
  if (period_bytes == 0) {
    g_period.store(0, std::memory_order_relaxed);
    return true;
  }
  if (!started.exchange(true)) {
    auto* t = new (g_table_storage) LiveTable(kLiveCapacity, kStackCapacity);
    if (!t->ok()) {
      started.store(false);
      return false;
    }
    // The filter before the table: a block sampled once the table is visible
    // must meet the filter when it is freed, or it would stay in the table.
    g_fast.filter.store(t->filter_bits(), std::memory_order_release);
    g_table.store(t, std::memory_order_release);
  }
  g_period.store(period_bytes, std::memory_order_relaxed);
  return g_table.load() != nullptr;
}

uint64_t HeapSamplePeriod() {
  return g_table.load(std::memory_order_relaxed) == nullptr
             ? 0
             : g_period.load(std::memory_order_relaxed);
}

void ResetThreadSampler() {
  ThreadState& ts = t_state;
  int64_t own = ts.stride - ts.countdown;
  if (own > 0) g_requested.fetch_add(static_cast<uint64_t>(own), std::memory_order_relaxed);
  ts.stride = ts.countdown = 0;
  ts.seeded = false;
}

}  // namespace cppdiag::heap

#if CPPDIAG_INTERPOSE_MALLOC

// noexcept (glibc's __THROW), as the slow paths: nothing between a hook and
// its tail call needs an exception landing pad.
extern "C" {
void* __libc_malloc(size_t) noexcept;
void __libc_free(void*) noexcept;
void* __libc_calloc(size_t, size_t) noexcept;
void* __libc_realloc(void*, size_t) noexcept;
void* __libc_memalign(size_t, size_t) noexcept;
void* __libc_valloc(size_t) noexcept;
void* __libc_pvalloc(size_t) noexcept;
}

namespace {

using namespace cppdiag::heap;  // NOLINT: the hooks are this file's point

// malloc_usable_size without the call: glibc's chunk header (malloc.c) is
// the size word just before the block, flags in its low 3 bits (IS_MMAPPED =
// 2). An in-use chunk gives its size less one header word, an mmapped one
// less two, as malloc_usable_size computes (without MTE, which Debian's
// x86_64 glibc lacks). Alloc and free account the same figure.
__attribute__((always_inline)) inline size_t UsableSize(void* p) {
  size_t h = reinterpret_cast<const size_t*>(p)[-1];
  return (h & ~size_t{7}) - ((h & 2) != 0 ? 2 * sizeof(size_t) : sizeof(size_t));
}

// The fast path's test: true when an allocation of `size` needs nothing but
// the decrement (which it then does).
__attribute__((always_inline)) inline bool TakeFast(size_t size) {
  ThreadState& ts = t_state;
  // Wrapping arithmetic: a size of 2^63 or more (a malloc bound to fail)
  // lands above the countdown or at or below 0, and so on the slow path.
  int64_t left = static_cast<int64_t>(static_cast<uint64_t>(ts.countdown) - size);
  if (__builtin_expect(left <= 0 || left > ts.countdown || Exact(), 0)) return false;
  ts.countdown = left;
  return true;
}

// free's test: true when `p` needs nothing but __libc_free.
__attribute__((always_inline)) inline bool FreeIsFast(void* p) {
  if (__builtin_expect(Exact(), 0)) return false;
  const std::atomic<uint64_t>* bits = g_fast.filter.load(std::memory_order_relaxed);
  return bits == nullptr || !LiveTable::FilterHit(bits, reinterpret_cast<uintptr_t>(p));
}

__attribute__((always_inline)) inline void* Track(void* p, size_t requested) {
  if (p != nullptr) {
    if (Exact()) AccountAlloc(UsableSize(p));
    CountAlloc(p, requested);
  }
  return p;
}

__attribute__((always_inline)) inline void* Refuse() {
  errno = ENOMEM;
  return nullptr;
}

CPPDIAG_HOOK __attribute__((noinline)) void* MallocSlow(size_t size) noexcept {
  if (!Admit(size)) return Refuse();
  return Track(__libc_malloc(size), size);
}

CPPDIAG_HOOK __attribute__((noinline)) void* CallocSlow(size_t n, size_t size) noexcept {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) return Refuse();
  if (!Admit(total)) return Refuse();
  return Track(__libc_calloc(n, size), total);
}

CPPDIAG_HOOK __attribute__((noinline)) void* MemalignSlow(size_t alignment, size_t size) noexcept {
  if (!Admit(size)) return Refuse();
  return Track(__libc_memalign(alignment, size), size);
}

CPPDIAG_HOOK __attribute__((noinline)) void FreeSlow(void* p) noexcept {
  if (p == nullptr) return;
  if (Exact()) AccountFree(UsableSize(p));
  ForgetIfSampled(p);  // before the block can be handed out again
  __libc_free(p);
}

__attribute__((always_inline)) inline void FreeImpl(void* p) noexcept {
  if (__builtin_expect(FreeIsFast(p), 1)) return __libc_free(p);
  return FreeSlow(p);
}

// operator new's contract: call the new-handler until `alloc` succeeds or
// there is none (throw std::bad_alloc; the nothrow forms return nullptr, also
// when the handler throws it). Inlined into each slow path below, so the
// loop stays in the hooks' section.
template <bool kNothrow, class Alloc>
__attribute__((always_inline)) inline void* NewHandlerLoop(Alloc alloc) noexcept(kNothrow) {
  for (;;) {
    if (void* p = alloc()) return p;
    std::new_handler h = std::get_new_handler();
    if constexpr (kNothrow) {
      if (h == nullptr) return nullptr;
      try {
        h();
      } catch (const std::bad_alloc&) {
        return nullptr;
      }
    } else {
      if (h == nullptr) throw std::bad_alloc();
      h();
    }
  }
}

CPPDIAG_HOOK __attribute__((noinline)) void* NewSlow(size_t size) {
  return NewHandlerLoop<false>([size]()
                                   __attribute__((always_inline)) { return MallocSlow(size); });
}

CPPDIAG_HOOK __attribute__((noinline)) void* NewAlignedSlow(size_t size, std::align_val_t al) {
  return NewHandlerLoop<false>([=]() __attribute__((always_inline)) {
    return MemalignSlow(static_cast<size_t>(al), size);
  });
}

CPPDIAG_HOOK __attribute__((noinline)) void* NewNothrowSlow(size_t size) noexcept {
  return NewHandlerLoop<true>([size]() __attribute__((always_inline)) { return MallocSlow(size); });
}

CPPDIAG_HOOK __attribute__((noinline)) void* NewAlignedNothrowSlow(size_t size,
                                                                   std::align_val_t al) noexcept {
  return NewHandlerLoop<true>([=]() __attribute__((always_inline)) {
    return MemalignSlow(static_cast<size_t>(al), size);
  });
}

// A failed fast malloc goes on to the slow path (which charges the countdown
// again: harmless, and only on failure) for the new-handler loop.
__attribute__((always_inline)) inline void* NewImpl(size_t size) {
  if (__builtin_expect(TakeFast(size), 1)) {
    if (void* p = __libc_malloc(size)) return p;
  }
  return NewSlow(size);
}

__attribute__((always_inline)) inline void* NewNothrowImpl(size_t size) noexcept {
  if (__builtin_expect(TakeFast(size), 1)) {
    if (void* p = __libc_malloc(size)) return p;
  }
  return NewNothrowSlow(size);
}

}  // namespace

extern "C" {

CPPDIAG_HOOK void* malloc(size_t size) {
  if (__builtin_expect(TakeFast(size), 1)) return __libc_malloc(size);
  return MallocSlow(size);
}

CPPDIAG_HOOK void free(void* p) { FreeImpl(p); }

CPPDIAG_HOOK void* calloc(size_t n, size_t size) {
  size_t total;
  if (__builtin_expect(!__builtin_mul_overflow(n, size, &total) && TakeFast(total), 1)) {
    return __libc_calloc(n, size);
  }
  return CallocSlow(n, size);
}

CPPDIAG_HOOK void* realloc(void* p, size_t size) {
  if (p == nullptr) return MallocSlow(size);
  if (size == 0) {
    FreeSlow(p);
    return nullptr;
  }
  bool exact = Exact();
  size_t old = exact ? UsableSize(p) : 0;
  if (exact && size > old && !Admit(size - old)) return Refuse();  // p stays valid
  // A sampled block leaves the table first: once realloc returns, its address
  // may be handed to another thread. If realloc fails the block stays live
  // but unsampled (an undercount of one sample).
  ForgetIfSampled(p);
  void* q = __libc_realloc(p, size);
  if (q != nullptr) {
    if (exact) {
      AccountFree(old);
      AccountAlloc(UsableSize(q));
    }
    CountAlloc(q, size);
  }
  return q;
}

CPPDIAG_HOOK void* memalign(size_t alignment, size_t size) { return MemalignSlow(alignment, size); }

CPPDIAG_HOOK void* aligned_alloc(size_t alignment, size_t size) {
  return MemalignSlow(alignment, size);
}

CPPDIAG_HOOK int posix_memalign(void** out, size_t alignment, size_t size) {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
  void* p = MemalignSlow(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

CPPDIAG_HOOK void* valloc(size_t size) {
  if (!Admit(size)) return Refuse();
  return Track(__libc_valloc(size), size);
}

CPPDIAG_HOOK void* pvalloc(size_t size) {
  if (!Admit(size)) return Refuse();
  return Track(__libc_pvalloc(size), size);
}

}  // extern "C"

// The operator new/delete family: replacing them (rather than letting
// libstdc++'s call malloc) attributes C++ allocations to the caller of new
// and keeps the hard limit: new throws std::bad_alloc, nothrow returns null.
CPPDIAG_HOOK void* operator new(size_t size) { return NewImpl(size); }
CPPDIAG_HOOK void* operator new[](size_t size) { return NewImpl(size); }
CPPDIAG_HOOK void* operator new(size_t size, const std::nothrow_t&) noexcept {
  return NewNothrowImpl(size);
}
CPPDIAG_HOOK void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  return NewNothrowImpl(size);
}
CPPDIAG_HOOK void* operator new(size_t size, std::align_val_t al) {
  return NewAlignedSlow(size, al);
}
CPPDIAG_HOOK void* operator new[](size_t size, std::align_val_t al) {
  return NewAlignedSlow(size, al);
}
CPPDIAG_HOOK void* operator new(size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return NewAlignedNothrowSlow(size, al);
}
CPPDIAG_HOOK void* operator new[](size_t size, std::align_val_t al,
                                  const std::nothrow_t&) noexcept {
  return NewAlignedNothrowSlow(size, al);
}
CPPDIAG_HOOK void operator delete(void* p) noexcept { FreeImpl(p); }
CPPDIAG_HOOK void operator delete[](void* p) noexcept { FreeImpl(p); }
CPPDIAG_HOOK void operator delete(void* p, const std::nothrow_t&) noexcept { FreeImpl(p); }
CPPDIAG_HOOK void operator delete[](void* p, const std::nothrow_t&) noexcept { FreeImpl(p); }
CPPDIAG_HOOK void operator delete(void* p, size_t) noexcept { FreeImpl(p); }
CPPDIAG_HOOK void operator delete[](void* p, size_t) noexcept { FreeImpl(p); }
CPPDIAG_HOOK void operator delete(void* p, std::align_val_t) noexcept { FreeImpl(p); }
CPPDIAG_HOOK void operator delete[](void* p, std::align_val_t) noexcept { FreeImpl(p); }
CPPDIAG_HOOK void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  FreeImpl(p);
}
CPPDIAG_HOOK void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  FreeImpl(p);
}
CPPDIAG_HOOK void operator delete(void* p, size_t, std::align_val_t) noexcept { FreeImpl(p); }
CPPDIAG_HOOK void operator delete[](void* p, size_t, std::align_val_t) noexcept { FreeImpl(p); }

#endif  // CPPDIAG_INTERPOSE_MALLOC
