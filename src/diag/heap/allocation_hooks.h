// The allocation hook layer: libcppdiag interposes the C allocation functions
// (malloc, free, calloc, realloc, memalign, posix_memalign, aligned_alloc,
// valloc, pvalloc) and the operator new/delete family (plain, nothrow, array,
// sized, aligned) of the process it is linked or preloaded into, and forwards
// them to glibc's __libc_* implementations.
//
// What the hooks do on every call: account the live heap (the usable size of
// every live block; per-thread deltas folded into one atomic every 256 KiB,
// so the figure may lag by that much per thread) and enforce the heap hard
// limit. `operator new` therefore throws std::bad_alloc once the limit is
// reached (after the new-handler, if any, gives up; the nothrow forms return
// nullptr), as .NET's GC heap hard limit makes the runtime throw
// OutOfMemoryException. They also feed the sampling heap profiler
// (heap_profiler.h): a thread-local byte countdown, so an unsampled
// allocation costs a decrement and a compare, and an unsampled free one load
// and one test of the live table's filter.
//
// The hooks themselves are async-signal-safe in what they add: no locks, no
// allocation of their own.
//
// Sanitizer builds (ASan, TSan) keep the sanitizer's allocator: the hooks are
// compiled out and HooksActive() returns false.
#pragma once

#include <cstdint>

namespace cppdiag::heap {

// True when this build interposes the allocator.
bool HooksActive();

// Live heap bytes beyond which allocations fail with ENOMEM (operator new
// throws std::bad_alloc). 0 turns the limit off. Safe to call at any time.
void SetHeapHardLimit(uint64_t bytes);
uint64_t HeapHardLimit();

// Live heap bytes the hooks have seen allocated and not yet freed (blocks
// allocated before the hooks were active are not counted).
uint64_t HeapInUseBytes();

// How many allocations the hard limit refused.
uint64_t HeapLimitFailures();

}  // namespace cppdiag::heap
