// Interposes glibc's allocation functions and the operator new/delete family.
// Everything here runs inside malloc: no allocation, no locks held across
// calls out, no stdio.
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

namespace cppdiag::heap {
namespace {

std::atomic<uint64_t> g_allocated{0};  // usable bytes, folded from threads
std::atomic<uint64_t> g_freed{0};
std::atomic<uint64_t> g_limit{0};
std::atomic<uint64_t> g_failures{0};

// Bytes this thread allocated and freed since its last fold into the
// globals. initial-exec: no allocation on first use, even when preloaded.
constexpr uint64_t kFoldBytes = 256 * 1024;
__attribute__((tls_model("initial-exec"))) thread_local uint64_t t_alloc_pending = 0;
__attribute__((tls_model("initial-exec"))) thread_local uint64_t t_free_pending = 0;

inline void Fold() {
  if (t_alloc_pending + t_free_pending > kFoldBytes) {
    g_allocated.fetch_add(t_alloc_pending, std::memory_order_relaxed);
    g_freed.fetch_add(t_free_pending, std::memory_order_relaxed);
    t_alloc_pending = t_free_pending = 0;
  }
}
[[maybe_unused]] inline void AccountAlloc(uint64_t n) {
  t_alloc_pending += n;
  Fold();
}
[[maybe_unused]] inline void AccountFree(uint64_t n) {
  t_free_pending += n;
  Fold();
}

int64_t InUse() {
  return static_cast<int64_t>(g_allocated.load(std::memory_order_relaxed) -
                              g_freed.load(std::memory_order_relaxed));
}

// False when allocating `size` more bytes would cross the hard limit.
[[maybe_unused]] inline bool Admit(size_t size) {
  uint64_t limit = g_limit.load(std::memory_order_relaxed);
  if (limit == 0) return true;
  int64_t in_use = InUse() + static_cast<int64_t>(t_alloc_pending - t_free_pending);
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

// Bytes this thread may still allocate before its next sample. Starts at 0,
// so a thread's first allocation takes the slow path once and draws.
__attribute__((tls_model("initial-exec"))) thread_local int64_t t_countdown = 0;
__attribute__((tls_model("initial-exec"))) thread_local bool t_in_hook = false;
__attribute__((tls_model("initial-exec"))) thread_local bool t_seeded = false;
__attribute__((tls_model("initial-exec"))) thread_local ExponentialStride t_stride;

// While the profiler is off, threads look again at the period every 1 MiB.
constexpr int64_t kOffRecheckBytes = 1 << 20;

// Frames between CaptureStack and the caller of the allocation function:
// CaptureStack's return into SampleSlow, SampleSlow's into the hook.
constexpr size_t kSkipFrames = 2;

__attribute__((noinline)) void SampleSlow(void* p, size_t size) {
  if (t_in_hook) {  // an allocation made by the sampler itself
    t_countdown = kOffRecheckBytes;
    return;
  }
  t_in_hook = true;
  uint64_t period = g_period.load(std::memory_order_relaxed);
  LiveTable* table = g_table.load(std::memory_order_acquire);
  if (period == 0 || table == nullptr) {
    t_countdown = kOffRecheckBytes;
  } else if (!t_seeded) {  // the first draw samples nothing (as abseil)
    t_stride.Seed(reinterpret_cast<uintptr_t>(&t_countdown) ^
                  (g_seed_counter.fetch_add(1, std::memory_order_relaxed) * 0x9E3779B97F4A7C15ull));
    t_seeded = true;
    t_countdown = t_stride.Next(period);
  } else {
    uint64_t pcs[kMaxFrames];
    size_t depth = CaptureStack(pcs, kMaxFrames, kSkipFrames, ThreadStackHigh());
    table->Insert(reinterpret_cast<uintptr_t>(p), size, pcs, depth, period);
    t_countdown = t_stride.Next(period);
  }
  t_in_hook = false;
}

[[maybe_unused]] inline void MaybeSample(void* p, size_t size) {
  t_countdown -= static_cast<int64_t>(size);
  if (__builtin_expect(t_countdown > 0, 1)) return;
  SampleSlow(p, size);
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

}  // namespace

bool HooksActive() { return CPPDIAG_INTERPOSE_MALLOC != 0; }
void SetHeapHardLimit(uint64_t bytes) { g_limit.store(bytes, std::memory_order_relaxed); }
uint64_t HeapHardLimit() { return g_limit.load(std::memory_order_relaxed); }
uint64_t HeapInUseBytes() {
  int64_t v = InUse();
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}
uint64_t HeapLimitFailures() { return g_failures.load(std::memory_order_relaxed); }
uint64_t HeapTotalAllocatedBytes() { return g_allocated.load(std::memory_order_relaxed); }
uint64_t HeapTotalFreedBytes() { return g_freed.load(std::memory_order_relaxed); }

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
    g_table.store(t, std::memory_order_release);
    pthread_atfork(AtForkPrepare, AtForkParent, AtForkChild);
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
  t_countdown = 0;
  t_seeded = false;
}

}  // namespace cppdiag::heap

#if CPPDIAG_INTERPOSE_MALLOC

extern "C" {
void* __libc_malloc(size_t);
void __libc_free(void*);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void* __libc_valloc(size_t);
void* __libc_pvalloc(size_t);
}

namespace {

using namespace cppdiag::heap;  // NOLINT: the hooks are this file's point

// malloc_usable_size without the call: glibc's chunk header (malloc.c) is
// the size word just before the block, flags in its low 3 bits (IS_MMAPPED =
// 2). An in-use chunk gives its size less one header word, an mmapped one
// less two, as malloc_usable_size computes (without MTE, which Debian's
// x86_64 glibc lacks). Saves a PLT call and a read of the next chunk's
// header on every malloc and free; alloc and free account the same figure.
__attribute__((always_inline)) inline size_t UsableSize(void* p) {
  size_t h = reinterpret_cast<const size_t*>(p)[-1];
  return (h & ~size_t{7}) - ((h & 2) != 0 ? 2 * sizeof(size_t) : sizeof(size_t));
}

// Every hook inlines these, so that the sampler's stack walk finds the
// caller of malloc/new one frame above the hook.
__attribute__((always_inline)) inline void* Track(void* p, size_t requested) {
  if (p != nullptr) {
    AccountAlloc(UsableSize(p));
    MaybeSample(p, requested);
  }
  return p;
}

__attribute__((always_inline)) inline void* Refuse() {
  errno = ENOMEM;
  return nullptr;
}

__attribute__((always_inline)) inline void* MallocImpl(size_t size) {
  if (!Admit(size)) return Refuse();
  return Track(__libc_malloc(size), size);
}

__attribute__((always_inline)) inline void* MemalignImpl(size_t alignment, size_t size) {
  if (!Admit(size)) return Refuse();
  return Track(__libc_memalign(alignment, size), size);
}

__attribute__((always_inline)) inline void FreeImpl(void* p) {
  if (p == nullptr) return;
  AccountFree(UsableSize(p));
  ForgetIfSampled(p);  // before the block can be handed out again
  __libc_free(p);
}

[[noreturn]] void ThrowBadAlloc() { throw std::bad_alloc(); }

// operator new's contract: call the new-handler until it gives up.
__attribute__((always_inline)) inline void* NewImpl(size_t size) {
  for (;;) {
    if (void* p = MallocImpl(size)) return p;
    std::new_handler h = std::get_new_handler();
    if (h == nullptr) ThrowBadAlloc();
    h();
  }
}

__attribute__((always_inline)) inline void* NewAlignedImpl(size_t size, std::align_val_t al) {
  for (;;) {
    if (void* p = MemalignImpl(static_cast<size_t>(al), size)) return p;
    std::new_handler h = std::get_new_handler();
    if (h == nullptr) ThrowBadAlloc();
    h();
  }
}

__attribute__((always_inline)) inline void* NewNothrowImpl(size_t size) {
  for (;;) {
    if (void* p = MallocImpl(size)) return p;
    std::new_handler h = std::get_new_handler();
    if (h == nullptr) return nullptr;
    try {
      h();
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
  }
}

__attribute__((always_inline)) inline void* NewAlignedNothrowImpl(size_t size,
                                                                  std::align_val_t al) {
  for (;;) {
    if (void* p = MemalignImpl(static_cast<size_t>(al), size)) return p;
    std::new_handler h = std::get_new_handler();
    if (h == nullptr) return nullptr;
    try {
      h();
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
  }
}

}  // namespace

extern "C" {

void* malloc(size_t size) { return MallocImpl(size); }

void free(void* p) { FreeImpl(p); }

void* calloc(size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) return Refuse();
  if (!Admit(total)) return Refuse();
  return Track(__libc_calloc(n, size), total);
}

void* realloc(void* p, size_t size) {
  if (p == nullptr) return MallocImpl(size);
  if (size == 0) {
    FreeImpl(p);
    return nullptr;
  }
  size_t old = UsableSize(p);
  if (size > old && !Admit(size - old)) return Refuse();  // p stays valid, as realloc promises
  // A sampled block leaves the table first: once realloc returns, its address
  // may be handed to another thread. If realloc fails the block stays live
  // but unsampled (an undercount of one sample).
  ForgetIfSampled(p);
  void* q = __libc_realloc(p, size);
  if (q != nullptr) {
    AccountFree(old);
    AccountAlloc(UsableSize(q));
    MaybeSample(q, size);
  }
  return q;
}

void* memalign(size_t alignment, size_t size) { return MemalignImpl(alignment, size); }

void* aligned_alloc(size_t alignment, size_t size) { return MemalignImpl(alignment, size); }

int posix_memalign(void** out, size_t alignment, size_t size) {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
  void* p = MemalignImpl(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

void* valloc(size_t size) {
  if (!Admit(size)) return Refuse();
  return Track(__libc_valloc(size), size);
}

void* pvalloc(size_t size) {
  if (!Admit(size)) return Refuse();
  return Track(__libc_pvalloc(size), size);
}

}  // extern "C"

// The operator new/delete family: replacing them (rather than letting
// libstdc++'s call malloc) attributes C++ allocations to the caller of new
// and keeps the hard limit: new throws std::bad_alloc, nothrow returns null.
void* operator new(size_t size) { return NewImpl(size); }
void* operator new[](size_t size) { return NewImpl(size); }
void* operator new(size_t size, const std::nothrow_t&) noexcept { return NewNothrowImpl(size); }
void* operator new[](size_t size, const std::nothrow_t&) noexcept { return NewNothrowImpl(size); }
void* operator new(size_t size, std::align_val_t al) { return NewAlignedImpl(size, al); }
void* operator new[](size_t size, std::align_val_t al) { return NewAlignedImpl(size, al); }
void* operator new(size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return NewAlignedNothrowImpl(size, al);
}
void* operator new[](size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return NewAlignedNothrowImpl(size, al);
}
void operator delete(void* p) noexcept { FreeImpl(p); }
void operator delete[](void* p) noexcept { FreeImpl(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { FreeImpl(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { FreeImpl(p); }
void operator delete(void* p, size_t) noexcept { FreeImpl(p); }
void operator delete[](void* p, size_t) noexcept { FreeImpl(p); }
void operator delete(void* p, std::align_val_t) noexcept { FreeImpl(p); }
void operator delete[](void* p, std::align_val_t) noexcept { FreeImpl(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { FreeImpl(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { FreeImpl(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { FreeImpl(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { FreeImpl(p); }

#endif  // CPPDIAG_INTERPOSE_MALLOC
