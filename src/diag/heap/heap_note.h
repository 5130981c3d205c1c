// The profiler's note in every dump: the live-heap table, raw pcs and
// estimates, so a dump alone answers "what holds memory" (symbols are
// resolved by the reader, from the dump's module list).
//
// The layout (owner, type, fields) and a reader's decoder are in
// heap_note_layout.h, header-only, for readers outside the runtime.
#pragma once

#include <cstdint>

#include "diag/dump/note_provider.h"
#include "diag/heap/heap_note_layout.h"

namespace cppdiag::heap {

// The note provider (context unused). Async-signal-safe, lock-free; writes
// nothing when the profiler is off.
void WriteHeapNote(void* context, dump::NoteOutput* out);

// Registers WriteHeapNote with the dump writer's registry. Returns 0 or an
// errno (EEXIST if already registered).
int RegisterHeapNoteProvider();

}  // namespace cppdiag::heap
