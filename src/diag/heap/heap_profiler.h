// Control of the sampling heap profiler that lives in the allocation hooks
// (internal/profiler_hooks.cc). The runtime starts it from CPPDIAG_HEAP_SAMPLE_BYTES;
// CollectHeapProfile (heap_profile.h) reads it; heap_note.h puts it in dumps.
//
//   cppdiag::heap::StartHeapProfiler(512 * 1024);   // at start, normal context
//   ...
//   cppdiag::heap::HeapProfile p = cppdiag::heap::CollectHeapProfile();
#pragma once

#include <cstddef>
#include <cstdint>

namespace cppdiag::heap {

class LiveTable;

// Fixed capacities of the live table (3/4 usable: ~49k live samples, i.e.
// ~24 GiB of live heap at the default period) and of the stack table.
inline constexpr size_t kLiveCapacity = size_t{1} << 16;
inline constexpr size_t kStackCapacity = size_t{1} << 14;

// Starts sampling with mean stride `period_bytes`; 0 stops sampling (live
// samples stay in the table). The first non-zero call maps the tables and
// registers fork handlers: normal context only. Returns false when the
// tables could not be mapped. Threads pick up a new period within 1 MiB of
// allocation, or at their next sample.
bool StartHeapProfiler(uint64_t period_bytes);

// The current mean stride; 0 when the profiler is off.
uint64_t HeapSamplePeriod();

// Bytes requested from the allocation functions since the hooks became
// active (calloc counts n * size, realloc its new size; requested, not usable
// sizes), whether or not the profiler runs. Counted for free by the sampling
// countdown: each thread adds what it allocated when its countdown runs out
// (every sample period on average, every 1 MiB while the profiler is off).
// So the figure lags by up to one such stride per other thread (the calling
// thread's own bytes are included), and a thread that exits loses its last
// partial stride: short-lived threads are undercounted by at most one stride
// each. Good for allocation rates over seconds. Async-signal-safe.
uint64_t HeapTotalAllocatedBytes();

// Usable bytes freed since exact accounting started (allocation_hooks.h:
// HeapAccountingExact); 0 without it. Not comparable with
// HeapTotalAllocatedBytes (requested bytes, counted since start): for the
// live heap use HeapInUseBytes. Async-signal-safe.
uint64_t HeapTotalFreedBytes();

// Bytes held by live sampled blocks. The profiler serves them from a region
// of its own, not from glibc, so glibc's mallinfo2 does not see them: a
// figure of the whole malloc heap adds this to mallinfo2's. Slot sizes
// (powers of two), so up to twice the requested bytes. Async-signal-safe.
uint64_t HeapSampledBlockBytes();

// The live table; nullptr until StartHeapProfiler succeeded. For readers
// (CollectHeapProfile, the dump note, tests).
LiveTable* ProfilerTable();

// Makes the calling thread's next allocation draw a new stride (tests that
// change the period).
void ResetThreadSampler();

}  // namespace cppdiag::heap
