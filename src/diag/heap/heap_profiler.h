// Control of the sampling heap profiler that lives in the allocation hooks
// (allocation_hooks.cc). The runtime starts it from CPPDIAG_HEAP_SAMPLE_BYTES;
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

// Bytes allocated / freed since start, all allocations (usable sizes;
// per-thread counts are folded every 256 KiB, so they may lag by that much
// per thread). Async-signal-safe.
uint64_t HeapTotalAllocatedBytes();
uint64_t HeapTotalFreedBytes();

// The live table; nullptr until StartHeapProfiler succeeded. For readers
// (CollectHeapProfile, the dump note, tests).
LiveTable* ProfilerTable();

// Makes the calling thread's next allocation draw a new stride (tests that
// change the period).
void ResetThreadSampler();

}  // namespace cppdiag::heap
