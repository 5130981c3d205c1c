#include "cli/analyze/glibc_heap.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <unordered_set>

#include "diag/dump/dump_type.h"

namespace cppdiag::cli::analyze {
namespace {

constexpr uint64_t kHeapMaxSize = uint64_t{64} << 20;  // HEAP_MAX_SIZE on x86-64
constexpr uint64_t kPrevInuse = 1, kIsMmapped = 2, kNonMainArena = 4, kFlags = 7;
constexpr uint64_t kMinChunk = 32;
constexpr size_t kMaxArenas = 4096, kMaxHeaps = 1 << 16, kMaxListLength = 1 << 24;

// malloc_state (glibc 2.26+, x86-64).
constexpr uint64_t kMallocStateSize = 2200;
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
  Walker(const CoreFile& core, GlibcHeap* out, std::optional<uint64_t> tcache_key)
      : core_(core), words_(core), out_(out), tcache_key_(tcache_key) {}

  void Warn(std::string w) { out_->warnings.push_back(std::move(w)); }

  // The fastbin lists' chunks of the arena at `arena` (safe-linking
  // demangled: glibc 2.32+ stores next ^ (&next >> 12); older glibcs store
  // next as it is, which the range check then tells apart).
  void CollectFastbins(uint64_t arena) {
    for (uint64_t i = 0; i < kNumFastbins; ++i) {
      auto p = words_.At(arena + kFastbins + 8 * i);
      size_t n = 0;
      while (p && *p != 0 && n++ < kMaxListLength) {
        if (!fast_.insert(*p).second) break;  // a loop
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
      } else if (tcache_key_ && words_.At(p + 24) == tcache_key_) {
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
  std::optional<uint64_t> tcache_key_;
  std::unordered_set<uint64_t> fast_;
};

std::string NoLibcSymbols(const CoreDebugInfo& debug) {
  for (const ModuleInfo& m : debug.modules()) {
    if (!m.name.starts_with("libc.so")) continue;
    if (m.opened.empty()) {
      return fmt::format("libc ({}) could not be read: {}", m.path, m.why_not);
    }
    return fmt::format(
        "glibc's main_arena is not in {}'s symbol table: install its debug file (Debian: "
        "libc6-dbg; build id {})",
        m.name, m.build_id.empty() ? "unknown" : m.build_id);
  }
  std::string others;
  for (const ModuleInfo& m : debug.modules()) {
    for (const char* alloc : {"jemalloc", "tcmalloc", "mimalloc"}) {
      if (m.name.find(alloc) != std::string::npos) others = " (" + m.name + " is loaded)";
    }
  }
  return "no glibc in this process: its allocator is not glibc malloc" + others;
}

}  // namespace

Result<GlibcHeap> ReadGlibcHeap(Session& session) {
  const CoreNotes& notes = session.notes();
  if (notes.cppdiag) {
    auto type = static_cast<DumpType>(notes.cppdiag->dump_type);
    if (type == DumpType::kMini || type == DumpType::kTriage) {
      return Error::Invalid(
          fmt::format("this dump holds no heap (type {}); take a heap or full dump",
                      type == DumpType::kMini ? "mini" : "triage"));
    }
  }
  CPPDIAG_ASSIGN_OR_RETURN(CoreDebugInfo * debug, session.debug());
  auto main_arena = debug->FindSymbol("libc.so", "main_arena");
  auto mp = debug->FindSymbol("libc.so", "mp_");
  if (!main_arena || !mp) return Error::Invalid(NoLibcSymbols(*debug));
  auto layout = ParLayoutFor(mp->size);
  if (main_arena->size != kMallocStateSize || !layout) {
    return Error::Invalid(fmt::format(
        "glibc's malloc_state is {} bytes and malloc_par {} here; cppdiag reads the x86-64 "
        "layouts of glibc 2.26 and later (2200; 112 or 136)",
        main_arena->size, mp->size));
  }
  auto key = debug->FindSymbol("libc.so", "tcache_key");
  GlibcHeap out;
  out.main_arena = main_arena->address;
  std::optional<uint64_t> tcache_key;
  if (key) tcache_key = CoreWords(session.core()).At(key->address);
  Walker w(session.core(), &out, tcache_key);
  CoreWords& words = w.words();
  if (!words.At(main_arena->address + kTop) || !words.At(main_arena->address + kNext)) {
    return Error::Invalid(fmt::format(
        "this dump holds no heap: glibc's main arena ({:#x}, in libc's data) is not stored in it",
        main_arena->address));
  }
  if (auto n = words.At(mp->address + layout->n_mmaps)) {
    out.mp_n_mmaps = static_cast<int32_t>(*n & 0xffffffff);
  }
  // The arenas: main_arena, then `next` until it comes back.
  std::vector<uint64_t> arenas{main_arena->address};
  for (uint64_t a = main_arena->address; arenas.size() < kMaxArenas;) {
    auto next = words.At(a + kNext);
    if (!next || *next == main_arena->address || *next == 0) break;
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
      auto sbrk_base = words.At(mp->address + layout->sbrk_base);
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
      arena_heaps.emplace_back(h, h + *size);
      if (std::find(heaps.begin(), heaps.end(), arena_heaps.back()) != heaps.end()) break;
      h = *prev;
    }
    std::reverse(arena_heaps.begin(), arena_heaps.end());
    for (const auto& [start, end] : arena_heaps) {
      bool holds_arena = a >= start && a < end;
      uint64_t first =
          holds_arena ? AlignUp16(a + kMallocStateSize) : AlignUp16(start + layout->heap_info_size);
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

}  // namespace cppdiag::cli::analyze
