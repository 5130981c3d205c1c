// ReadGlibcHeap: the glibc heap of a session's core (glibc_heap.h walks it),
// from roots found this way, the first that works:
//  1. libc's symbols (its debug file, Debian's libc6-dbg, or an unstripped
//     libc): main_arena, mp_ (the main heap's start, glibc's count of
//     mmapped chunks) and tcache_key;
//  2. without them, main_arena by its shape in libc's writable data (or the
//     executable's, for a static program): a malloc_state whose 127 bins are
//     each empty (pointing at themselves) or hold 16-aligned chunks. Why this
//     and not a table of offsets per libc build id: it works for any build
//     of glibc 2.26+ (distributions, containers' own libcs, static
//     programs) with no table to keep up, and a false match would need 2 KiB
//     of self-referencing pointers. Without mp_, the main heap starts where
//     the mapping holding its top does (brk's start) and glibc's count of
//     mmapped chunks is unknown; the tcache key comes from the tcache
//     structs. GlibcHeap::found_by says which way was taken.
//
//   CPPDIAG_ASSIGN_OR_RETURN(GlibcHeap heap, ReadGlibcHeap(session));
#pragma once

#include "cli/analyze/glibc_heap.h"
#include "cli/analyze/session.h"
#include "common/status.h"

namespace cppdiag::cli::analyze {

// Fails with one line when there is no glibc heap to read: "this dump holds
// no heap (type mini); take a heap or full dump", no libc loaded (another
// allocator), main_arena found neither by symbol nor by shape (with what to
// install), an unknown layout, or the main arena not stored in the dump.
Result<GlibcHeap> ReadGlibcHeap(Session& session);

}  // namespace cppdiag::cli::analyze
