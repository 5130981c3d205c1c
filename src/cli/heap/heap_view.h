// From the live heap a target reports to pprof profiles, and from pprof
// profiles to what people read: call stacks by live bytes (report) and by
// growth between two profiles (diff), with allocator frames skipped and the
// leaking function named.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/heap/pprof.h"
#include "cli/heap/symbolizer.h"
#include "diag/heap/heap_profile.h"

namespace cppdiag::cli::heap {

// The pprof profile of a live heap: sample types inuse_objects/count and
// inuse_space/bytes (the unbiased estimates, rounded), one sample per stack,
// period_type space/bytes with the sample period. Locations hold pc - 1 (the
// stacks are return addresses; pc - 1 lies in the call instruction, which
// pprof and llvm-symbolizer resolve to the call's line) and their functions,
// inlined ones included, resolved by `symbolizer`.
pprof::Profile BuildProfile(const cppdiag::heap::HeapProfile& heap, Symbolizer& symbolizer);

struct Frame {
  std::string function;
  std::string file;
  int64_t line = 0;
  std::string ToString() const;  // "f() at file.cc:12", or "f()"
};

struct StackValue {
  std::vector<Frame> frames;  // innermost first, allocator frames skipped
  double bytes = 0;           // live (report) or growth (diff)
  double objects = 0;
  // The first frame that is not the standard library's: what to fix.
  const Frame& leaking_frame() const;
};

// Allocation functions and our hooks: malloc & co., operator new, the
// std::allocator layers, cppdiag::heap.
bool IsAllocatorFrame(const std::string& function);
// Functions of the C++ standard library (std::, __gnu_cxx::), which are
// rarely where a leak is fixed.
bool IsLibraryFrame(const std::string& function);

// The profile's stacks by live bytes, largest first. Stacks through
// cppdiag::heap::CollectHeapProfile (what the profiler allocated to answer
// the snapshot) are left out. Fails on a profile that has no inuse_space (or
// alloc_space) sample type.
Result<std::vector<StackValue>> StacksByBytes(const pprof::Profile& profile);

// Stacks whose live bytes grew from `before` to `after`, most first (stacks
// are matched by their functions and lines, not addresses, so two runs
// match). Stacks that shrank or stayed are left out.
Result<std::vector<StackValue>> Growth(const pprof::Profile& before, const pprof::Profile& after);

// Totals of the inuse_space/inuse_objects values (of the stacks
// StacksByBytes counts).
struct Totals {
  double bytes = 0, objects = 0;
};
Totals ProfileTotals(const pprof::Profile& profile);

// Text for the terminal: the top `top` stacks, each with its bytes, objects
// and frames (at most `max_frames`), names and files escaped (ForTerminal).
std::string FormatStacks(const std::vector<StackValue>& stacks, size_t top, size_t max_frames,
                         bool growth);

}  // namespace cppdiag::cli::heap
