// Which memory a dump stores, per dump type (DESIGN.md), as a list of
// segments the writer turns into PT_LOAD headers. Every mapping gets at least
// one segment, so a debugger sees the whole address space; what the type
// leaves out has no data (p_filesz 0), as in a kernel core.
//
//   full    every readable mapping
//   heap    what the kernel's core holds under the process's
//           /proc/<pid>/coredump_filter (read when the snapshot is taken):
//           by default (0x33) anonymous memory (private and shared), private
//           file-backed mappings that were written to (.data, .bss, .got,
//           relro: whole mapping if any page is a private copy), the first
//           page of every ELF module and private hugetlb memory; bit 2 adds
//           unwritten private file mappings, bit 3 shared file mappings;
//           plus the vDSO, and mini's stacks, TCBs and module list whatever
//           the filter (so the threads' backtraces are always there)
//   mini    each thread's stack from its SP minus the 128-byte red zone to the
//           end of the stack mapping, the pages around each thread's TCB
//           (fs_base: libthread_db lists threads through them), the first page
//           of every ELF module, the vDSO, written module data up to
//           kMiniModuleDataLimit per mapping, and the pages holding the
//           module list (r_debug, link_map, names)
//   triage  like mini without module data; of the module list and the TCBs
//           only their exact bytes are stored (the rest of those pages reads
//           as zero), so no memory that is not a stack, thread control
//           block, module header or the module list
//
// No type stores a mapping the process marked MADV_DONTDUMP, nor device
// memory (smaps VmFlags dd, io, pf): the kernel never dumps them either, and
// a stack or module list inside one is left out too (dd wins).
//
// Async-signal-safe: works in caller-provided arrays; no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

#include "diag/dump/dump_type.h"
#include "diag/dump/internal/module_list.h"
#include "diag/dump/process_snapshot.h"

namespace cppdiag::dump {

inline constexpr uint64_t kPageSize = 4096;
inline constexpr uint64_t kRedZone = 128;
inline constexpr uint64_t kMiniModuleDataLimit = 1 << 20;

struct PlannedSegment {
  uint64_t start = 0;
  uint64_t end = 0;
  uint32_t flags = 0;      // PF_R | PF_W | PF_X
  bool has_data = false;   // p_filesz = size (else 0)
  bool exact = false;      // store only bytes of the plan's exact ranges; zeros elsewhere
  bool anonymous = false;  // private anonymous: pages never touched are zero
};

struct PlanBuffers {
  PlannedSegment* segments = nullptr;
  size_t segment_capacity = 0;
  ByteRange* ranges = nullptr;  // scratch for partial inclusions
  size_t range_capacity = 0;
};

struct MemoryPlan {
  const PlannedSegment* segments = nullptr;  // ascending, covering every mapping
  size_t segment_count = 0;
  const ByteRange* ranges = nullptr;  // sorted; the exact ones drive exact segments
  size_t range_count = 0;
  bool ranges_truncated = false;  // some partial inclusions did not fit
};

// Segments needed at most for `mappings` mappings and `ranges` ranges.
inline size_t PlanSegmentCapacity(size_t mappings, size_t ranges) {
  return mappings + 2 * ranges + 1;
}

// Fills `buffers` and describes the plan in `*plan`. Returns 0, or ENOBUFS if
// the segments do not fit.
int PlanMemory(const ProcessSnapshot& snapshot, DumpType type, const PlanBuffers& buffers,
               MemoryPlan* plan);

// True for a shared mapping of a file with no link left (MAP_SHARED|
// MAP_ANONYMOUS shows as "/dev/zero (deleted)", SysV shm as "/SYSV...",
// memfd as "/memfd:... (deleted)", and any deleted file): anonymous shared
// memory, as the kernel's coredump_filter counts it (i_nlink == 0).
bool IsAnonymousShared(const MappingSnapshot& m);

}  // namespace cppdiag::dump
