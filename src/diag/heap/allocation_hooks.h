// The allocation hook layer: libcppdiag interposes the C allocation functions
// (malloc, free, calloc, realloc, reallocarray, memalign, posix_memalign,
// aligned_alloc, valloc, pvalloc, malloc_usable_size) and the operator
// new/delete family (plain, nothrow, array, sized, aligned) of the process it
// is linked or preloaded into, and forwards them to glibc's __libc_*
// implementations.
//
// What the hooks do on every call, by default: decrement a thread-local byte
// countdown for the sampling heap profiler (heap_profiler.h) on allocation,
// compare the address with the sample region's bounds on free, then
// tail-call glibc. That is all: no sizes are read and no shared counter is
// touched, so the hooks cost a few percent of a malloc/free pair
// (bench/heap/heap_bench.md). A sampled allocation (one every
// CPPDIAG_HEAP_SAMPLE_BYTES on average) is served from the profiler's own
// region (internal/sample_region.h) rather than glibc, which is how free
// knows it by its address; every entry point above, malloc_usable_size and
// realloc included, works on such blocks.
//
// Exact accounting, which the heap hard limit needs, is off until
// EnableExactHeapAccounting() or SetHeapHardLimit(non-zero) turns it on, and
// then stays on. With it every call also reads the block's size from glibc's
// chunk header (the usable size plus the header: glibc's own measure) and
// adds it to per-thread counters folded into a shared total every 256 KiB of
// the thread's traffic, sooner near the limit (so the figures may lag by that
// much per thread). Each thread admits allocations within the room it saw at
// its last fold, without reading the shared total on each call; so the live
// heap may pass the limit by what the other threads have not folded yet, up
// to 256 KiB per allocating thread (plus one block's rounding), before
// allocations are refused. Then `operator new` throws
// std::bad_alloc (after the new-handler, if any, gives up; the nothrow forms
// return nullptr; the C functions return nullptr with errno ENOMEM), as
// .NET's GC heap hard limit makes the runtime throw OutOfMemoryException.
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

// Turns exact accounting on (idempotent; it cannot be turned off). Blocks
// allocated before are freed through the accounted path too, so the count
// starts from glibc's own in-use figure (mallinfo2: chunk sizes, including
// each chunk's header and blocks cached in tcache, so it starts a little high
// and errs toward refusing early). Allocations racing with the switch may be
// counted on free only; HeapInUseBytes is clamped at 0, so it never reads
// negative. Normal context only (mallinfo2 takes the arena locks).
void EnableExactHeapAccounting();

// True once exact accounting is on: HeapInUseBytes and HeapTotalFreedBytes
// (heap_profiler.h) are measured; when false they read 0 and counters should
// omit them. Async-signal-safe.
bool HeapAccountingExact();

// Live heap bytes beyond which allocations fail with ENOMEM (operator new
// throws std::bad_alloc). A non-zero limit turns exact accounting on first
// (the first such call must be in normal context); 0 turns the limit off and
// leaves accounting on.
void SetHeapHardLimit(uint64_t bytes);
uint64_t HeapHardLimit();

// The calling thread's allocations are never refused by the hard limit (they
// are still counted). For the runtime's own threads (diagnostic server,
// watchdog): a dump or a snapshot must still be served when the service has
// run into its limit, which is exactly when it is asked for. For the life of
// the thread; async-signal-safe.
void ExemptThisThreadFromHardLimit();

// With exact accounting: bytes of the live heap (glibc's figure when
// accounting started, plus chunk sizes allocated since, minus those freed;
// a sampled block counts its slot's size; per-thread lag up to 256 KiB, and a thread that exits
// takes its unfolded deltas with it, up to 256 KiB each way; never below 0). Without it: 0.
// Async-signal-safe.
uint64_t HeapInUseBytes();

// How many allocations the hard limit refused.
uint64_t HeapLimitFailures();

}  // namespace cppdiag::heap
