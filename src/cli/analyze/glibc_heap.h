// GlibcHeap: glibc malloc's heap read from a core's memory, with no help
// from the process (no instrumentation): the arenas (main_arena, then each
// arena's `next` to the others), every chunk of every heap, and the chunks
// mmapped on their own.
//
// Where it starts: libc's `main_arena` and `mp_` (local symbols: they are
// in libc's symbol table only when its debug file is installed, Debian's
// libc6-dbg) and `tcache_key`. The main arena's chunks run from
// mp_.sbrk_base to the end of its top chunk; another arena's heaps are
// HEAP_MAX_SIZE-aligned (64 MiB), the last found from its top chunk, the
// others through heap_info.prev. A chunk is free when the next one's
// PREV_INUSE bit is clear (the bins), when a fastbin list holds it, or when
// its second word is tcache_key (a tcache entry's `key`). Chunks mmapped on
// their own are not listed by glibc: they are found at the start of
// anonymous writable mappings (IS_MMAPPED, a page multiple that fits) and
// checked against mp_.n_mmaps.
//
// The layouts are those of x86-64 glibc 2.26 and later, recognised by the
// symbols' sizes (malloc_state 2200 bytes; malloc_par 136 bytes from 2.35,
// 112 before); another size is refused with a message saying so.
//
// The heap is the target's and may be corrupt: every read is checked
// against the core, lists and walks are bounded, and what is inconsistent
// ends that walk with a warning, keeping what was read.
//
//   CPPDIAG_ASSIGN_OR_RETURN(GlibcHeap heap, ReadGlibcHeap(session));
//   for (const HeapChunk& c : heap.chunks) if (c.state == ChunkState::kInUse) ...
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "cli/analyze/session.h"
#include "common/status.h"

namespace cppdiag::cli::analyze {

// 8-byte words of the core's memory, the last segment kept at hand (walks
// read neighbouring words).
class CoreWords {
 public:
  explicit CoreWords(const CoreFile& core) : core_(core) {}
  // The word at `addr`, or nullopt when the dump did not store all of it.
  std::optional<uint64_t> At(uint64_t addr) {
    if (seg_ == nullptr || addr < seg_->vaddr || addr + 8 > seg_->vaddr + seg_->filesz ||
        addr + 8 < addr) {
      seg_ = core_.FindLoad(addr);
      if (seg_ == nullptr || addr - seg_->vaddr + 8 > seg_->filesz) {
        seg_ = nullptr;
        return std::nullopt;
      }
    }
    uint64_t v;
    std::memcpy(&v, core_.bytes().data() + seg_->offset + (addr - seg_->vaddr), 8);
    return v;
  }

 private:
  const CoreFile& core_;
  const LoadSegment* seg_ = nullptr;
};

enum class ChunkState : uint8_t {
  kInUse,
  kFree,     // in a bin (the next chunk's PREV_INUSE is clear)
  kFastbin,  // on a fastbin list
  kTcache,   // in a thread's tcache
  kTop,      // an arena's top chunk
  kMmapped,  // mmapped on its own (in use)
};

struct HeapChunk {
  uint64_t address = 0;  // the chunk (its header); user data at address + 16
  uint64_t size = 0;     // the whole chunk, header included
  ChunkState state = ChunkState::kInUse;
  uint32_t arena = 0;  // index into GlibcHeap::arenas; mmapped: UINT32_MAX
  uint64_t data() const { return address + 16; }
  // Bytes the program may use: the chunk less its header (8 more for a
  // chunk in use, which may use the next one's prev_size field, are left out).
  uint64_t usable() const { return size - 16; }
};

struct ArenaSummary {
  uint64_t address = 0;
  bool main = false;
  uint32_t heaps = 0;  // heaps walked (the main arena: 1, its sbrk region)
  uint64_t system_mem = 0;
  uint64_t top = 0, top_size = 0;
  uint64_t in_use = 0, in_use_bytes = 0;
  uint64_t free = 0, free_bytes = 0;  // bins, fastbins and tcache together
  uint64_t fastbin = 0, tcache = 0;
};

struct GlibcHeap {
  uint64_t main_arena = 0;
  std::vector<ArenaSummary> arenas;  // the main arena first
  std::vector<HeapChunk> chunks;     // every chunk walked, each heap in address order
  uint64_t mmapped = 0, mmapped_bytes = 0;
  int64_t mp_n_mmaps = -1;  // what glibc counted (mp_.n_mmaps); -1: unknown
  std::vector<std::string> warnings;
};

// Fails with one line when there is no glibc heap to read: "this dump holds
// no heap (type mini); take a heap or full dump", no libc loaded (another
// allocator, or static), libc's symbols not found (with what to install),
// an unknown layout, or the main arena not stored in the dump.
Result<GlibcHeap> ReadGlibcHeap(Session& session);

}  // namespace cppdiag::cli::analyze
