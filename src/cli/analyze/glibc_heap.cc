#include "cli/analyze/glibc_heap.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <unordered_set>

namespace cppdiag::cli::analyze {
namespace {

constexpr uint64_t kHeapMaxSize = uint64_t{64} << 20;  // HEAP_MAX_SIZE on x86-64
constexpr uint64_t kPrevInuse = 1, kIsMmapped = 2, kNonMainArena = 4, kFlags = 7;
constexpr uint64_t kMinChunk = 32;
constexpr size_t kMaxArenas = 4096, kMaxHeaps = 1 << 16, kMaxListLength = 1 << 24;

// malloc_state (glibc 2.26+, x86-64).
constexpr uint64_t kFastbins = 16, kNumFastbins = 10, kTop = 96, kNext = 2160, kSystemMem = 2184;

// malloc_par: the fields read, by its size.
struct ParLayout {
  uint64_t n_mmaps, sbrk_base, heap_info_size;
};
std::optional<ParLayout> ParLayoutFor(uint64_t size) {
  if (size == 136) return ParLayout{60, 96, 48};  // 2.35+: thp_pagesize, hp_pagesize, hp_flags
  if (size == 112) return ParLayout{40, 72, 32};  // 2.26 to 2.34
  return std::nullopt;
}

uint64_t AlignUp16(uint64_t v) { return (v + 15) & ~uint64_t{15}; }

class Walker {
 public:
  Walker(const CoreFile& core, GlibcHeap* out) : core_(core), words_(core), out_(out) {}

  void AddTcacheKey(uint64_t key) {
    if (key != 0) tcache_keys_.insert(key);
  }

  // Without the tcache_key symbol: the keys of the entries listed by the
  // tcache_perthread_struct at `chunk` (the first chunk of a heap, when its
  // thread's first malloc was served there): 0x290 bytes from glibc 2.30
  // (uint16_t counts[64]), 0x250 before (uint8_t counts). glibc 2.34+ puts
  // one random key in every entry, older ones the struct's own address.
  void TcacheKeysFromStruct(uint64_t chunk) {
    auto size_word = words_.At(chunk + 8);
    if (!size_word) return;
    uint64_t size = *size_word & ~kFlags, entries = 0;
    if (size == 0x290) entries = chunk + 16 + 128;
    if (size == 0x250) entries = chunk + 16 + 64;
    if (entries == 0) return;
    for (uint64_t i = 0; i < 64; ++i) {
      auto e = words_.At(entries + 8 * i);
      if (!e || *e == 0 || (*e & 15) != 0) continue;
      auto key = words_.At(*e + 8);
      if (key && *key != 0 && *key != *e) AddTcacheKey(*key);
    }
  }

  void Warn(std::string w) { out_->warnings.push_back(std::move(w)); }

  // The fastbin lists' chunks of the arena at `arena` (safe-linking
  // demangled: glibc 2.32+ stores next ^ (&next >> 12); older glibcs store
  // next as it is, which the range check then tells apart).
  void CollectFastbins(uint64_t arena) {
    for (uint64_t i = 0; i < kNumFastbins; ++i) {
      auto p = words_.At(arena + kFastbins + 8 * i);
      size_t n = 0;
      while (p && *p != 0 && n++ < kMaxListLength) {
        if (!fast_.insert(*p).second) {
          Warn(fmt::format(
              "fastbin {} of arena {:#x} loops at chunk {:#x}; the list is read up to it", i, arena,
              *p));
          break;
        }
        auto raw = words_.At(*p + 16);
        if (!raw) {
          Warn(fmt::format("fastbin {} of arena {:#x}: chunk {:#x} is not in the dump", i, arena,
                           *p));
          break;
        }
        uint64_t next = ((*p + 16) >> 12) ^ *raw;
        if (next != 0 && (next & 15) != 0) next = *raw;  // a glibc without safe-linking
        p = next;
      }
    }
  }

  // Walks chunks from `start` to `end` (exclusive), for arena `index`.
  void WalkHeap(uint32_t index, uint64_t start, uint64_t end, uint64_t top) {
    ArenaSummary& a = out_->arenas[index];
    uint64_t p = start;
    while (p + 16 <= end) {
      auto size_word = words_.At(p + 8);
      if (!size_word) {
        Warn(fmt::format("arena {:#x}: chunk {:#x} is not in the dump; its heap is read up to it",
                         a.address, p));
        return;
      }
      uint64_t size = *size_word & ~kFlags;
      if (p == top) {
        a.top = p;
        a.top_size = size;
        out_->chunks.push_back({p, size, ChunkState::kTop, index});
        return;
      }
      if (size == 0 && (*size_word & kPrevInuse)) return;  // a heap's closing fencepost
      if (size < 16 || (size & 15) != 0 || size > end - p) {
        Warn(
            fmt::format("arena {:#x}: chunk {:#x} has a corrupt size {:#x}; its heap is read "
                        "up to it",
                        a.address, p, *size_word));
        return;
      }
      if (size == 16) {  // the first fencepost of a heap's end
        p += size;
        continue;
      }
      ChunkState state = ChunkState::kInUse;
      auto next_size = p + size < end ? words_.At(p + size + 8) : std::nullopt;
      if (fast_.count(p)) {
        state = ChunkState::kFastbin;
      } else if (next_size && !(*next_size & kPrevInuse)) {
        state = ChunkState::kFree;
      } else if (auto key = words_.At(p + 24); key && tcache_keys_.count(*key)) {
        state = ChunkState::kTcache;
      }
      out_->chunks.push_back({p, size, state, index});
      if (state == ChunkState::kInUse) {
        ++a.in_use;
        a.in_use_bytes += size;
      } else {
        ++a.free;
        a.free_bytes += size;
        a.fastbin += state == ChunkState::kFastbin;
        a.tcache += state == ChunkState::kTcache;
      }
      p += size;
    }
  }

  // Chunks mmapped on their own: at the start of anonymous writable
  // mappings outside the arenas' heaps, one after another.
  void FindMmapped(const CoreNotes& notes,
                   const std::vector<std::pair<uint64_t, uint64_t>>& heaps) {
    for (const LoadSegment& s : core_.loads()) {
      if (!(s.flags & 2) || s.filesz < 16) continue;
      bool file = false;
      if (notes.files) {
        for (const FileMapping& m : notes.files->mappings)
          file |= s.vaddr >= m.start && s.vaddr < m.end;
      }
      bool heap = std::any_of(heaps.begin(), heaps.end(), [&](const auto& h) {
        return s.vaddr < h.second && h.first < s.end();
      });
      if (file || heap) continue;
      uint64_t p = s.vaddr;
      while (p + 16 <= s.end()) {
        auto prev = words_.At(p), size_word = words_.At(p + 8);
        if (!prev || !size_word) break;
        uint64_t size = *size_word & ~kFlags;
        if (!(*size_word & kIsMmapped) || (*size_word & kNonMainArena) || size < 4096 ||
            (size & 4095) != 0 || size > s.end() - p || *prev != 0) {
          break;
        }
        out_->chunks.push_back({p, size, ChunkState::kMmapped, UINT32_MAX});
        ++out_->mmapped;
        out_->mmapped_bytes += size;
        p += size;
      }
    }
  }

  CoreWords& words() { return words_; }

 private:
  const CoreFile& core_;
  CoreWords words_;
  GlibcHeap* out_;
  std::unordered_set<uint64_t> tcache_keys_;
  std::unordered_set<uint64_t> fast_;
};

}  // namespace

Result<GlibcHeap> WalkGlibcHeap(const CoreFile& core, const CoreNotes& notes,
                                const GlibcHeapRoots& roots) {
  std::optional<ParLayout> layout;
  if (roots.mp) {
    layout = ParLayoutFor(roots.mp_size);
    if (!layout) {
      return Error::Invalid(
          fmt::format("glibc's malloc_par is {} bytes here; cppdiag reads the x86-64 layouts of "
                      "glibc 2.26 and later (112 or 136)",
                      roots.mp_size));
    }
  }
  const uint64_t main_arena = roots.main_arena;
  GlibcHeap out;
  out.main_arena = main_arena;
  out.found_by = roots.found_by;
  Walker w(core, &out);
  if (roots.tcache_key) w.AddTcacheKey(*roots.tcache_key);
  CoreWords& words = w.words();
  if (!words.At(main_arena + kTop) || !words.At(main_arena + kNext)) {
    return Error::Invalid(fmt::format(
        "this dump holds no heap: glibc's main arena ({:#x}, in libc's data) is not stored in it",
        main_arena));
  }
  if (layout) {
    if (auto n = words.At(*roots.mp + layout->n_mmaps)) {
      out.mp_n_mmaps = static_cast<int32_t>(*n & 0xffffffff);
    }
  }
  // The arenas: main_arena, then `next` until it comes back.
  std::vector<uint64_t> arenas{main_arena};
  for (uint64_t a = main_arena; arenas.size() < kMaxArenas;) {
    auto next = words.At(a + kNext);
    if (!next || *next == main_arena || *next == 0) break;
    if (std::find(arenas.begin(), arenas.end(), *next) != arenas.end()) {
      w.Warn(fmt::format("arena {:#x}: its next arena {:#x} loops back", a, *next));
      break;
    }
    arenas.push_back(*next);
    a = *next;
  }
  std::vector<std::pair<uint64_t, uint64_t>> heaps;  // ranges walked
  for (uint32_t i = 0; i < arenas.size(); ++i) {
    uint64_t a = arenas[i];
    ArenaSummary s;
    s.address = a;
    s.main = i == 0;
    s.system_mem = words.At(a + kSystemMem).value_or(0);
    out.arenas.push_back(s);
    auto top = words.At(a + kTop);
    if (!top) {
      w.Warn(fmt::format("arena {:#x} is not in the dump", a));
      continue;
    }
    w.CollectFastbins(a);
    auto top_size = words.At(*top + 8);
    uint64_t top_end = top_size ? *top + (*top_size & ~kFlags) : *top;
    if (i == 0) {
      std::optional<uint64_t> sbrk_base;
      if (layout) {
        sbrk_base = words.At(*roots.mp + layout->sbrk_base);
      } else if (const LoadSegment* seg = core.FindLoad(*top); seg != nullptr && *top != 0) {
        sbrk_base = seg->vaddr;  // brk's start: the main heap is one mapping
      }
      if (!sbrk_base || *sbrk_base == 0) continue;  // malloc never ran
      if (*top < *sbrk_base || top_end < *top) {
        w.Warn(
            fmt::format("the main arena's top {:#x} is outside its sbrk heap from {:#x} "
                        "(a non-contiguous main arena): its heap is not read",
                        *top, *sbrk_base));
        continue;
      }
      out.arenas[i].heaps = 1;
      heaps.emplace_back(*sbrk_base, top_end);
      if (!roots.tcache_key) w.TcacheKeysFromStruct(AlignUp16(*sbrk_base));
      w.WalkHeap(i, AlignUp16(*sbrk_base), top_end, *top);
      continue;
    }
    // Another arena: its heaps, from the one holding its top back through prev.
    uint64_t h = *top & ~(kHeapMaxSize - 1);
    std::vector<std::pair<uint64_t, uint64_t>> arena_heaps;
    for (size_t n = 0; h != 0 && n < kMaxHeaps; ++n) {
      auto ar_ptr = words.At(h), prev = words.At(h + 8), size = words.At(h + 16);
      if (!ar_ptr || !prev || !size || *ar_ptr != a || *size > kHeapMaxSize) {
        w.Warn(fmt::format("arena {:#x}: heap {:#x} is not in the dump or is not its own", a, h));
        break;
      }
      std::pair<uint64_t, uint64_t> range(h, h + *size);
      if (std::find(arena_heaps.begin(), arena_heaps.end(), range) != arena_heaps.end()) {
        w.Warn(fmt::format("arena {:#x}: heap {:#x}'s prev heaps loop back to it", a, h));
        break;
      }
      if (std::find(heaps.begin(), heaps.end(), range) != heaps.end()) break;
      arena_heaps.push_back(range);
      h = *prev;
    }
    std::reverse(arena_heaps.begin(), arena_heaps.end());
    // sizeof(heap_info): 48 from 2.35 (mp_ 136 bytes), 32 before; without
    // mp_ only the heap holding the arena (the first) needs none.
    for (const auto& [start, end] : arena_heaps) {
      bool holds_arena = a >= start && a < end;
      uint64_t heap_info_size = 32;
      if (layout) {
        heap_info_size = layout->heap_info_size;
      } else if (auto sz = words.At(start + 48 + 8); sz && (*sz & ~kFlags) >= kMinChunk &&
                                                     ((*sz & ~kFlags) & 15) == 0 &&
                                                     (*sz & ~kFlags) <= end - start - 48) {
        heap_info_size = 48;  // the first chunk's header is there: glibc 2.35+
      }
      uint64_t first =
          holds_arena ? AlignUp16(a + kMallocStateSize) : AlignUp16(start + heap_info_size);
      if (!roots.tcache_key && holds_arena) w.TcacheKeysFromStruct(first);
      bool holds_top = *top >= start && *top < end;
      w.WalkHeap(i, first, holds_top ? std::min(top_end, end) : end, *top);
      heaps.emplace_back(start, start + kHeapMaxSize);
      ++out.arenas[i].heaps;
    }
  }
  w.FindMmapped(notes, heaps);
  if (out.mp_n_mmaps >= 0 && static_cast<uint64_t>(out.mp_n_mmaps) != out.mmapped) {
    w.Warn(fmt::format("glibc counts {} mmapped chunks (mp_.n_mmaps), {} were found in the dump",
                       out.mp_n_mmaps, out.mmapped));
  }
  return out;
}

std::vector<uint64_t> FindArenasByShape(const CoreFile& core, uint64_t start, uint64_t end) {
  std::vector<uint64_t> found;
  CoreWords words(core);
  constexpr uint64_t kBins = 112, kNumBins = 127;
  for (const LoadSegment& s : core.loads()) {
    if (!(s.flags & 2) || s.end() <= start || s.vaddr >= end) continue;
    uint64_t from = std::max(s.vaddr, start), to = std::min(s.vaddr + s.filesz, end);
    for (uint64_t m = (from + 7) & ~uint64_t{7}; m + kMallocStateSize <= to; m += 8) {
      // bin i (1..127) is bins[2i-2], bins[2i-1]; an empty one points at
      // bin_at(m, i), 16 bytes before its fd.
      bool ok = true;
      size_t empty = 0;
      for (uint64_t i = 0; i < kNumBins && ok; ++i) {
        uint64_t fd_at = m + kBins + 16 * i, self = fd_at - 16;
        auto fd = words.At(fd_at), bk = words.At(fd_at + 8);
        if (!fd || !bk) {
          ok = false;
        } else if (*fd == self && *bk == self) {
          ++empty;
        } else {
          ok = *fd != self && *bk != self && *fd != 0 && *bk != 0 && (*fd & 15) == 0 &&
               (*bk & 15) == 0;
        }
      }
      if (!ok || empty == 0) continue;
      auto top = words.At(m + kTop), next = words.At(m + kNext);
      if (!top || !next || *top == 0 || (*top & 15) != 0 || *next == 0 || (*next & 7) != 0) {
        continue;
      }
      found.push_back(m);
    }
  }
  return found;
}

}  // namespace cppdiag::cli::analyze
