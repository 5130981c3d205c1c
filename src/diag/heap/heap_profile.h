// The live heap as the sampling profiler sees it: what `cppdiag heap
// snapshot` asks for over the diagnostic socket, and what the profiler's note
// carries in every dump.
//
// Stacks are raw return addresses of the process (innermost first, the
// allocation function's caller at [0]); symbols are resolved out of process
// by the CLI (elfutils), as heaptrack does. Estimates are unbiased: a sample
// of `size` bytes taken with mean stride P stands for
// size / (1 - exp(-size / P)) bytes and 1 / (1 - exp(-size / P)) objects.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cppdiag::heap {

struct HeapStackSample {
  std::vector<uint64_t> pcs;   // return addresses, innermost first
  uint64_t sampled_count = 0;  // live sampled allocations with this stack
  uint64_t sampled_bytes = 0;  // their requested bytes
  double estimated_count = 0;  // unbiased estimate of live objects
  double estimated_bytes = 0;  // unbiased estimate of live bytes
};

struct HeapMapping {  // an executable mapping, to symbolize pcs
  uint64_t start = 0, end = 0, offset = 0;
  std::string path;
  std::string build_id;  // hex, when known
};

struct HeapProfile {
  uint64_t sample_period_bytes = 0;  // CPPDIAG_HEAP_SAMPLE_BYTES (0: profiler off)
  int64_t time_unix_ns = 0;
  uint64_t total_allocated_bytes = 0;   // HeapTotalAllocatedBytes (for rates)
  uint64_t total_freed_bytes = 0;       // HeapTotalFreedBytes: 0 without exact accounting
  std::vector<HeapStackSample> stacks;  // one per distinct stack with live samples
  std::vector<HeapMapping> mappings;
};

// Where a reader of the profiler's recent samples (ProfilerTable()'s
// LiveTable::ReadRecent, as a trace does) starts: the next sample from now
// on (0 when the profiler is off; it then starts from the first).
uint64_t HeapSampleCursor();

// The process's executable file mappings now (/proc/self/maps, build IDs
// from the loaded modules' notes), to symbolize its pcs. Normal context.
std::vector<HeapMapping> ExecutableMappings();

// Collects the live table now (normal context: allocates). Returns an empty
// profile with sample_period_bytes 0 when the profiler is off.
HeapProfile CollectHeapProfile();

}  // namespace cppdiag::heap
