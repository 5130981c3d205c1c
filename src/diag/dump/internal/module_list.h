// Finds the memory a debugger reads to list a process's shared libraries, so
// that small dumps (mini, triage) can keep exactly that: the executable's
// program headers and dynamic section (DT_DEBUG), the dynamic linker's
// r_debug (and r_debug_extended's r_next chain of namespaces), every
// link_map's public fields (l_addr, l_name, l_ld, l_next, l_prev) and the
// names they point to.
//
// Async-signal-safe: reads through ProcessSnapshot::ReadMemory into small
// buffers on the stack; no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

#include "diag/dump/process_snapshot.h"

namespace cppdiag::dump {

struct ByteRange {
  uint64_t start = 0;
  uint64_t end = 0;
  // Only these bytes matter (the rest of their pages may be zeroed); false:
  // the whole pages around them are wanted.
  bool exact = false;
};

// Appends the module list's byte ranges to `out` (up to `capacity`), marked
// `exact`. Returns how many were appended; a process without a dynamic
// linker (static executable) yields none. `*truncated` (if given) is set when
// ranges did not fit.
size_t CollectModuleListRanges(const ProcessSnapshot& snapshot, bool exact, ByteRange* out,
                               size_t capacity, bool* truncated = nullptr);

// The value of auxv entry `type`, or 0.
uint64_t AuxvValue(const ProcessSnapshot& snapshot, uint64_t type);

}  // namespace cppdiag::dump
