// Runs on the dump path (maybe a signal handler): no locks, no allocation.
#include "diag/heap/heap_note.h"

#include <cstring>

#include "diag/heap/heap_profiler.h"
#include "diag/heap/sampler.h"

namespace cppdiag::heap {
namespace {

void Put32(unsigned char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void Put64(unsigned char* p, uint64_t v) { std::memcpy(p, &v, 8); }
void PutDouble(unsigned char* p, double v) { std::memcpy(p, &v, 8); }

}  // namespace

void WriteHeapNote(void*, dump::NoteOutput* out) {
  const LiveTable* table = ProfilerTable();
  if (table == nullptr) return;
  size_t n = table->stack_count();
  size_t size = kHeapNoteHeaderSize;
  for (size_t i = 0; i < n; ++i) {
    uint32_t depth = table->stack(i).depth;
    if (depth > kMaxFrames) depth = kMaxFrames;
    size += kHeapNoteRecordHeaderSize + 8 * depth;
  }
  out->Begin("CPPDIAG", kNtCppdiagHeap, size);
  unsigned char h[kHeapNoteHeaderSize] = {};
  Put32(h, kHeapNoteVersion);
  Put32(h + 4, kHeapNoteHeaderSize);
  Put64(h + 8, HeapSamplePeriod());
  Put64(h + 16, HeapTotalAllocatedBytes());
  Put64(h + 24, HeapTotalFreedBytes());
  Put32(h + 32, static_cast<uint32_t>(n));
  Put32(h + 36, kHeapNoteRecordHeaderSize);
  Put64(h + 40, table->live_count());
  out->Append(h, sizeof(h));
  for (size_t i = 0; i < n; ++i) {
    const StackRecord& s = table->stack(i);
    uint32_t depth = s.depth;
    if (depth > kMaxFrames) depth = kMaxFrames;
    unsigned char r[kHeapNoteRecordHeaderSize] = {};
    Put64(r, s.live_count);
    Put64(r + 8, s.live_bytes);
    PutDouble(r + 16, s.est_count);
    PutDouble(r + 24, s.est_bytes);
    Put32(r + 32, depth);
    out->Append(r, sizeof(r));
    out->Append(s.pcs, sizeof(s.pcs[0]) * depth);
  }
}

int RegisterHeapNoteProvider() { return dump::RegisterNoteProvider(&WriteHeapNote, nullptr); }

}  // namespace cppdiag::heap
