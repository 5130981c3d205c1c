// The interposition: glibc's allocation functions and the operator
// new/delete family, exported so that the dynamic linker binds every object's
// calls to them, each forwarding to glibc's __libc_* implementation (called
// directly: no dlsym, so there is no bootstrap to serve allocations made
// before this library is initialized). Exact accounting and the hard limit
// are in internal/accounting.h, the profiler's sampling in
// internal/profiler_hooks.h. Everything here runs inside malloc: no
// allocation, no locks held across calls out, no stdio.
//
// The fast paths (no exact accounting, no sample due) do one thread-local
// comparison and decrement, or one range comparison, and then TAIL-CALL
// glibc: no work after the call, so the compiler emits a jmp. A thread that
// keeps exact accounting (the hard limit) fails the first test by design
// (hook_state.h: its countdown is 0) and, with no sample due, malloc, calloc,
// new and free take a short exact path instead: glibc called, its chunk size
// counted in thread-local counters, no further call unless they ran out
// (accounting.h). Everything else goes to a noinline *Slow function.
// The hooks and the slow functions live in their own section: the sampler
// drops the leading frames that return into it, so a sample starts at the
// caller of malloc/new however the compiler inlined or tail-called (an -O0
// build keeps every frame).
#include "diag/heap/allocation_hooks.h"

#include <errno.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <new>

#include "diag/heap/internal/accounting.h"
#include "diag/heap/internal/hook_state.h"
#include "diag/heap/internal/profiler_hooks.h"

namespace cppdiag::heap {

namespace hooks {
FastFlags g_fast;
// NOLINTNEXTLINE(cert-err58-cpp): constinit: constant-initialized, no code runs
constinit __attribute__((tls_model("initial-exec"))) thread_local ThreadState t_state;
}  // namespace hooks

bool HooksActive() { return CPPDIAG_INTERPOSE_MALLOC != 0; }

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

using namespace cppdiag::heap;         // NOLINT: the hooks are this file's point
using namespace cppdiag::heap::hooks;  // NOLINT

// malloc_usable_size without the call: glibc's chunk header (malloc.c) is
// the size word just before the block, flags in its low 3 bits (IS_MMAPPED =
// 2). An in-use chunk gives its size less one header word, an mmapped one
// less two, as malloc_usable_size computes (without MTE, which Debian's
// x86_64 glibc lacks). For malloc_usable_size and realloc's copies; exact
// accounting counts ChunkBytes.
__attribute__((always_inline)) inline size_t UsableSize(void* p) {
  size_t h = reinterpret_cast<const size_t*>(p)[-1];
  return (h & ~size_t{7}) - ((h & 2) != 0 ? 2 * sizeof(size_t) : sizeof(size_t));
}

// True, and `countdown` charged, when `size` is below it: between samples a
// countdown is at least 1, so one unsigned comparison says that it stays
// positive; a size of 2^63 or more (a malloc bound to fail) compares above it
// and so takes the slow path. (While the thread's own sample is being taken
// the countdown is spent: an allocation nested in it, a signal handler's,
// goes uncounted.)
__attribute__((always_inline)) inline bool TakeFrom(int64_t& countdown, size_t size) {
  if (__builtin_expect(size >= static_cast<uint64_t>(countdown), 0)) return false;
  // For the compiler only: the countdown is read again by the subtraction,
  // so that the compare and the subtraction each take it as their memory
  // operand (one instruction less than a load kept in a register).
  asm("" ::: "memory");
  countdown -= static_cast<int64_t>(size);
  return true;
}

// The entry points' first test: no sample due and the thread keeps no exact
// accounting. With exact accounting the countdown is 0: every call fails it
// and takes ExactNoSample next.
__attribute__((always_inline)) inline bool Fast(size_t size) {
  return TakeFrom(t_state.countdown, size);
}

// The exact path's test, past Fast: the thread keeps exact accounting and no
// sample is due; else the slow path (which switches a thread to exact
// accounting, samples).
__attribute__((always_inline)) inline bool ExactNoSample(size_t size) {
  return TakeFrom(t_state.exact_countdown, size);
}

__attribute__((always_inline)) inline void* Refuse() {
  errno = ENOMEM;
  return nullptr;
}

// A block the exact path got from glibc ran the budget out: fold, and keep
// the block if the limit allows it, else give it back.
CPPDIAG_HOOK __attribute__((noinline)) void* AdmitAllocated(void* p) noexcept {
  ThreadState& ts = t_state;
  auto n = static_cast<int64_t>(ChunkBytes(p));
  ts.budget += n;  // not admitted yet
  if (AdmitSlow(ts, static_cast<size_t>(n))) {
    ts.budget -= n;  // below 0 only for a block above the room: the next call folds it
    return p;
  }
  __libc_free(p);
  return Refuse();
}

// The exact path's allocation (past ExactNoSample): glibc's block (nullptr
// when glibc failed or the hard limit refused), counted. The thread state is
// looked up after the call (nothing kept across it).
template <class LibcAlloc>
__attribute__((always_inline)) inline void* AllocExact(LibcAlloc libc_alloc) {
  void* p = libc_alloc();
  if (__builtin_expect(p == nullptr, 0)) return p;
  ThreadState& ts = t_state;
  ts.budget -= static_cast<int64_t>(ChunkBytes(p));
  if (__builtin_expect(ts.budget < 0, 0)) return AdmitAllocated(p);
  return p;
}

// Every allocation's slow path: the hard limit, the sampling countdown (a
// sample is served from the region), else glibc's `libc_alloc`; then exact
// accounting.
template <class LibcAlloc>
__attribute__((always_inline)) inline void* AllocSlow(size_t size, size_t alignment, bool zero,
                                                      LibcAlloc libc_alloc) {
  if (!Admit(size)) return Refuse();
  void* p = MaybeSample(size, alignment, zero);
  bool sampled = p != nullptr;
  if (!sampled) p = libc_alloc();
  if (p != nullptr && Exact()) AccountAlloc(sampled ? g_region.UsableSize(p) : ChunkBytes(p));
  return p;
}

CPPDIAG_HOOK __attribute__((noinline)) void* MallocSlow(size_t size) noexcept {
  return AllocSlow(
      size, 16, false, [size]() __attribute__((always_inline)) { return __libc_malloc(size); });
}

CPPDIAG_HOOK __attribute__((noinline)) void* CallocSlow(size_t n, size_t size) noexcept {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) return Refuse();
  return AllocSlow(
      total, 16, true, [=]() __attribute__((always_inline)) { return __libc_calloc(n, size); });
}

// glibc rounds an alignment that is not a power of two up to one.
__attribute__((always_inline)) inline size_t PowerOfTwoAtLeast(size_t n) {
  return n <= 16 ? 16 : n > (size_t{1} << 62) ? n : size_t{1} << (64 - __builtin_clzll(n - 1));
}

CPPDIAG_HOOK __attribute__((noinline)) void* MemalignSlow(size_t alignment, size_t size) noexcept {
  return AllocSlow(
      size, PowerOfTwoAtLeast(alignment),
      false, [=]() __attribute__((always_inline)) { return __libc_memalign(alignment, size); });
}

CPPDIAG_HOOK __attribute__((noinline)) void FreeSampledSlow(void* p) noexcept {
  size_t n = g_region.UsableSize(p);
  if (FreeSampled(p) && Exact()) AccountFree(n);
}

CPPDIAG_HOOK __attribute__((noinline)) void FoldThenFree(void* p) noexcept {
  FoldNow(t_state);
  __libc_free(p);
}

// free: one range test for the common case (glibc's block, no exact
// accounting); past it, the same difference against the region's span says
// "sampled", else (exact accounting: every address) glibc's block is
// counted inline and glibc tail-called, with no call of our own between.
__attribute__((always_inline)) inline void FreeImpl(void* p) noexcept {
  uintptr_t d = MinusRelaxed(reinterpret_cast<uintptr_t>(p), g_fast.free_lo);
  if (__builtin_expect(!BelowRelaxed(d, g_fast.free_span), 1)) return __libc_free(p);
  if (BelowRelaxed(d, g_fast.region_span)) return FreeSampledSlow(p);
  if (p == nullptr) return;
  ThreadState& ts = t_state;
  ts.free_left -= static_cast<int64_t>(ChunkBytes(p));
  if (__builtin_expect(ts.free_left < 0, 0)) return FoldThenFree(p);
  return __libc_free(p);
}

// realloc of a live block to a non-zero size.
CPPDIAG_HOOK __attribute__((noinline)) void* ReallocSlow(void* p, size_t size) noexcept {
  bool exact = Exact();
  bool old_sampled = g_region.Contains(p);
  size_t old = old_sampled ? g_region.UsableSize(p) : exact ? ChunkBytes(p) : 0;
  if (exact && size > old && !Admit(size - old)) return Refuse();  // p stays valid
  void* q = MaybeSample(size, 16, false);
  bool new_sampled = q != nullptr;
  if (!new_sampled && !old_sampled) {
    q = __libc_realloc(p, size);
  } else {
    // Between the region and glibc, either way, or within the region: a copy.
    if (!new_sampled && (q = __libc_malloc(size)) == nullptr) return nullptr;  // p stays valid
    size_t usable = old_sampled ? old : UsableSize(p);
    std::memcpy(q, p, usable < size ? usable : size);
    if (old_sampled) {
      FreeSampled(p);
    } else {
      __libc_free(p);
    }
  }
  if (q != nullptr && exact) {
    AccountFree(old);
    AccountAlloc(new_sampled ? g_region.UsableSize(q) : ChunkBytes(q));
  }
  return q;
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

// The entry points past Fast: the exact path, else the slow one. Without a
// frame pointer (push, mov and leave: 3 of the exact path's ~18
// instructions): they take no sample, and a CPU profile's walk loses no
// more than it does in glibc's malloc, which keeps none either.
#define CPPDIAG_NO_FRAME __attribute__((noinline, optimize("omit-frame-pointer")))

CPPDIAG_HOOK CPPDIAG_NO_FRAME void* MallocNotFast(size_t size) noexcept {
  if (ExactNoSample(size)) {
    return AllocExact([size]() __attribute__((always_inline)) { return __libc_malloc(size); });
  }
  return MallocSlow(size);
}

CPPDIAG_HOOK CPPDIAG_NO_FRAME void* CallocNotFast(size_t n, size_t size, size_t total) noexcept {
  // The budget first: calloc writes the whole block before it could be
  // refused. (The slow path charges the countdown itself.)
  if (static_cast<int64_t>(total) <= t_state.budget && ExactNoSample(total)) {
    return AllocExact([=]() __attribute__((always_inline)) { return __libc_calloc(n, size); });
  }
  return CallocSlow(n, size);
}

// The new-handler loop, for a request a sample or the limit must see, or
// glibc could not serve.
template <bool kNothrow>
CPPDIAG_HOOK __attribute__((noinline)) void* NewLoop(size_t size) noexcept(kNothrow) {
  if constexpr (kNothrow) {
    return NewNothrowSlow(size);
  } else {
    return NewSlow(size);
  }
}

template <bool kNothrow>
CPPDIAG_HOOK CPPDIAG_NO_FRAME void* NewNotFast(size_t size) noexcept(kNothrow) {
  if (ExactNoSample(size)) {
    void* p = AllocExact([size]() __attribute__((always_inline)) { return __libc_malloc(size); });
    if (__builtin_expect(p != nullptr, 1)) return p;
  }
  return NewLoop<kNothrow>(size);
}

// A failed fast malloc goes on to the slow path (which charges the countdown
// again: harmless, and only on failure) for the new-handler loop.
template <bool kNothrow>
__attribute__((always_inline)) inline void* NewImpl(size_t size) noexcept(kNothrow) {
  if (Fast(size)) {
    if (void* p = __libc_malloc(size)) return p;
    return NewLoop<kNothrow>(size);
  }
  return NewNotFast<kNothrow>(size);
}

}  // namespace

extern "C" {

CPPDIAG_HOOK void* malloc(size_t size) {
  if (Fast(size)) return __libc_malloc(size);
  return MallocNotFast(size);
}

CPPDIAG_HOOK void free(void* p) { FreeImpl(p); }

CPPDIAG_HOOK void* calloc(size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) return Refuse();
  if (Fast(total)) return __libc_calloc(n, size);
  return CallocNotFast(n, size, total);
}

CPPDIAG_HOOK void* realloc(void* p, size_t size) {
  if (p == nullptr) return MallocSlow(size);
  if (size == 0) {
    FreeImpl(p);
    return nullptr;
  }
  return ReallocSlow(p, size);
}

CPPDIAG_HOOK void* reallocarray(void* p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) return Refuse();
  return realloc(p, total);
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
  size_t page = static_cast<size_t>(getpagesize());
  return AllocSlow(
      size, page, false, [size]() __attribute__((always_inline)) { return __libc_valloc(size); });
}

CPPDIAG_HOOK void* pvalloc(size_t size) {
  size_t page = static_cast<size_t>(getpagesize());
  size_t rounded = size == 0 ? page : (size + page - 1) & ~(page - 1);
  if (rounded < size) return Refuse();
  return AllocSlow(
      rounded, page,
      false, [size]() __attribute__((always_inline)) { return __libc_pvalloc(size); });
}

// Sampled blocks are the region's: glibc would read a chunk header that is
// not there. The same figure as glibc's for its own blocks (UsableSize).
CPPDIAG_HOOK size_t malloc_usable_size(void* p) {
  if (p == nullptr) return 0;
  if (g_region.Contains(p)) return g_region.UsableSize(p);
  return UsableSize(p);
}

}  // extern "C"

// The operator new/delete family: replacing them (rather than letting
// libstdc++'s call malloc) attributes C++ allocations to the caller of new
// and keeps the hard limit: new throws std::bad_alloc, nothrow returns null.
CPPDIAG_HOOK void* operator new(size_t size) { return NewImpl<false>(size); }
CPPDIAG_HOOK void* operator new[](size_t size) { return NewImpl<false>(size); }
CPPDIAG_HOOK void* operator new(size_t size, const std::nothrow_t&) noexcept {
  return NewImpl<true>(size);
}
CPPDIAG_HOOK void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  return NewImpl<true>(size);
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
