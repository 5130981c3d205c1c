// The profiler's note in every dump: the live-heap table, raw pcs and
// estimates, so a dump alone answers "what holds memory" (symbols are
// resolved by the reader, from the dump's module list).
//
// Owner "CPPDIAG", type kNtCppdiagHeap (0x43440002). Little-endian,
// descriptor layout version 1:
//
//   header, 48 bytes
//     offset size  field
//          0    4  version                1
//          4    4  header_size            48 (readers skip what they don't know)
//          8    8  sample_period_bytes
//         16    8  total_allocated_bytes  requested bytes since start, all allocations
//                                         (HeapTotalAllocatedBytes: lags by a stride a thread)
//         24    8  total_freed_bytes      usable bytes freed while exact accounting ran,
//                                         0 without it (HeapTotalFreedBytes)
//         32    4  records                stack records that follow
//         36    4  record_header_size     40
//         40    8  live_samples           sampled allocations alive
//   then `records` stack records, each 40 + 8 * depth bytes
//          0    8  sampled_count          live sampled allocations
//          8    8  sampled_bytes          their requested bytes
//         16    8  estimated_count        double, unbiased estimate of live objects
//         24    8  estimated_bytes        double, unbiased estimate of live bytes
//         32    4  depth
//         36    4  reserved               0
//         40  8*d  pcs                    return addresses, innermost first
//
// Records with sampled_count 0 (stacks with nothing alive) are present and
// must be skipped. The table is read without its lock (a thread stopped by
// the dump may hold it): a record being updated at that moment may be torn.
// The note is sized from the stack count, which only grows; if a stack is
// added between the writer's measuring and writing passes (only possible
// when other threads run during the dump), the writer drops the note.
#pragma once

#include <cstdint>

#include "diag/dump/note_provider.h"

namespace cppdiag::heap {

inline constexpr uint32_t kNtCppdiagHeap = 0x43440002;
inline constexpr uint32_t kHeapNoteVersion = 1;
inline constexpr uint32_t kHeapNoteHeaderSize = 48;
inline constexpr uint32_t kHeapNoteRecordHeaderSize = 40;

// The note provider (context unused). Async-signal-safe, lock-free; writes
// nothing when the profiler is off.
void WriteHeapNote(void* context, dump::NoteOutput* out);

// Registers WriteHeapNote with the dump writer's registry. Returns 0 or an
// errno (EEXIST if already registered).
int RegisterHeapNoteProvider();

}  // namespace cppdiag::heap
