// The layout of the heap profiler's note (heap_note.h writes it) and its
// decoder, header-only: readers outside the runtime (the CLI's `dump
// analyze heapstat`) share them without linking the runtime.
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
//         24    8  total_freed_bytes      bytes (chunk sizes) freed while exact accounting ran,
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
//
// DecodeHeapNote checks every size against the descriptor (the note comes
// from a core: untrusted) and never reads past it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace cppdiag::heap {

inline constexpr uint32_t kNtCppdiagHeap = 0x43440002;
inline constexpr uint32_t kHeapNoteVersion = 1;
inline constexpr uint32_t kHeapNoteHeaderSize = 48;
inline constexpr uint32_t kHeapNoteRecordHeaderSize = 40;
// More frames than any writer records (kMaxFrames is far below): a bound for
// hostile depths.
inline constexpr uint32_t kHeapNoteMaxDepth = 1024;

struct HeapNoteRecord {
  uint64_t sampled_count = 0;
  uint64_t sampled_bytes = 0;
  double estimated_count = 0;
  double estimated_bytes = 0;
  std::vector<uint64_t> pcs;  // return addresses, innermost first
};

struct HeapNote {
  uint32_t version = 0;
  uint64_t sample_period_bytes = 0;
  uint64_t total_allocated_bytes = 0;
  uint64_t total_freed_bytes = 0;
  uint64_t live_samples = 0;
  std::vector<HeapNoteRecord> records;  // those with sampled_count > 0, in note order
};

namespace heap_note_internal {
template <typename T>
T Get(std::span<const uint8_t> in, size_t offset) {
  T v;
  std::memcpy(&v, in.data() + offset, sizeof v);  // x86_64 is little-endian, as the layout says
  return v;
}
}  // namespace heap_note_internal

// Decodes a descriptor of version >= 1 (longer headers and record headers
// are skipped past). Returns false when it is malformed: too short, sizes
// that do not fit, a depth over kHeapNoteMaxDepth.
inline bool DecodeHeapNote(std::span<const uint8_t> desc, HeapNote* out) {
  using heap_note_internal::Get;
  if (desc.size() < kHeapNoteHeaderSize) return false;
  HeapNote note;
  note.version = Get<uint32_t>(desc, 0);
  uint32_t header_size = Get<uint32_t>(desc, 4);
  if (note.version < 1 || header_size < kHeapNoteHeaderSize || header_size > desc.size()) {
    return false;
  }
  note.sample_period_bytes = Get<uint64_t>(desc, 8);
  note.total_allocated_bytes = Get<uint64_t>(desc, 16);
  note.total_freed_bytes = Get<uint64_t>(desc, 24);
  uint32_t records = Get<uint32_t>(desc, 32);
  uint32_t record_header = Get<uint32_t>(desc, 36);
  note.live_samples = Get<uint64_t>(desc, 40);
  if (record_header < kHeapNoteRecordHeaderSize) return false;
  size_t pos = header_size;
  for (uint32_t i = 0; i < records; ++i) {
    if (desc.size() - pos < record_header) return false;
    HeapNoteRecord r;
    r.sampled_count = Get<uint64_t>(desc, pos);
    r.sampled_bytes = Get<uint64_t>(desc, pos + 8);
    r.estimated_count = Get<double>(desc, pos + 16);
    r.estimated_bytes = Get<double>(desc, pos + 24);
    uint32_t depth = Get<uint32_t>(desc, pos + 32);
    pos += record_header;
    if (depth > kHeapNoteMaxDepth || (desc.size() - pos) / 8 < depth) return false;
    if (r.sampled_count > 0) {
      r.pcs.resize(depth);
      for (uint32_t k = 0; k < depth; ++k) r.pcs[k] = Get<uint64_t>(desc, pos + size_t{8} * k);
      note.records.push_back(std::move(r));
    }
    pos += 8 * size_t{depth};
  }
  *out = std::move(note);
  return true;
}

}  // namespace cppdiag::heap
