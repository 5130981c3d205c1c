// GlibcHeap: glibc malloc's heap read from a core's memory, with no help
// from the process (no instrumentation): the arenas (main_arena, then each
// arena's `next` to the others), every chunk of every heap, and the chunks
// mmapped on their own.
//
// Where it starts (GlibcHeapRoots, found by glibc_heap_reader.h): the
// address of libc's `main_arena`, and when libc's symbols are at hand `mp_`
// and `tcache_key`. The main arena's chunks run from mp_.sbrk_base (without
// mp_: the start of the mapping holding its top chunk, where brk began) to
// the end of its top chunk; another arena's heaps are HEAP_MAX_SIZE-aligned
// (64 MiB), the last found from its top chunk, the others through
// heap_info.prev. A chunk is free when the next one's PREV_INUSE bit is
// clear (the bins), when a fastbin list holds it, or when its second word is
// the tcache key (a tcache entry's `key`: tcache_key's value, or without the
// symbol the keys of the entries the tcache_perthread_struct at the start of
// each heap lists). Chunks mmapped on their own are not listed by glibc: they
// are found at the start of anonymous writable mappings (IS_MMAPPED, a page
// multiple that fits) and checked against mp_.n_mmaps.
//
// The layouts are those of x86-64 glibc 2.26 and later (malloc_state 2200
// bytes; malloc_par 136 bytes from 2.35, 112 before).
//
// The heap is the target's and may be corrupt: every read is checked
// against the core, lists and walks are bounded and loops detected, and what
// is inconsistent ends that walk with a warning, keeping what was read.
//
//   CPPDIAG_ASSIGN_OR_RETURN(GlibcHeap heap, WalkGlibcHeap(core, notes, roots));
//   for (const HeapChunk& c : heap.chunks) if (c.state == ChunkState::kInUse) ...
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "cli/analyze/core_file.h"
#include "cli/analyze/core_notes.h"
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
  std::string found_by;              // how main_arena was found (GlibcHeapRoots::found_by)
  std::vector<ArenaSummary> arenas;  // the main arena first
  std::vector<HeapChunk> chunks;     // every chunk walked, each heap in address order
  uint64_t mmapped = 0, mmapped_bytes = 0;
  int64_t mp_n_mmaps = -1;  // what glibc counted (mp_.n_mmaps); -1: unknown
  std::vector<std::string> warnings;
};

// Where a walk starts.
struct GlibcHeapRoots {
  uint64_t main_arena = 0;
  std::optional<uint64_t> mp;          // &mp_; nullopt: unknown (no libc symbols)
  uint64_t mp_size = 0;                // sizeof(malloc_par): 112 or 136 (with mp)
  std::optional<uint64_t> tcache_key;  // tcache_key's value; nullopt: from the tcaches
  std::string found_by;                // "libc's symbols", "its shape in libc's data", ...
};

inline constexpr uint64_t kMallocStateSize = 2200;  // sizeof(malloc_state), glibc 2.26+ x86-64

// Walks the heap from `roots`. Fails only when the main arena is not stored
// in the core or mp_size is not a known layout; a corrupt heap is read as far
// as it is consistent, with warnings.
Result<GlibcHeap> WalkGlibcHeap(const CoreFile& core, const CoreNotes& notes,
                                const GlibcHeapRoots& roots);

// The addresses in [start, end) (8-aligned) that hold a malloc_state whose
// malloc has run: each of its 127 bins either empty (fd and bk pointing at
// the bin itself, as malloc_init_state leaves it) or holding chunks (fd and
// bk 16-aligned, elsewhere), a 16-aligned top and a `next` arena. Only
// main_arena lives in libc's data (the others are in their heaps), so one
// address is expected; the shape is what glibc 2.26+ writes, with no symbol.
std::vector<uint64_t> FindArenasByShape(const CoreFile& core, uint64_t start, uint64_t end);

}  // namespace cppdiag::cli::analyze
