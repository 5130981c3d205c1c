// The glibc heap walker on a heap laid out by hand in a core (CoreBuilder):
// a main arena in "libc's data" (every bin empty but the unsorted one), its
// sbrk heap (a tcache struct, chunks in use, a tcache entry, a fastbin
// chunk, a free chunk in the unsorted bin, the top chunk) and one chunk
// mmapped on its own; each chunk's state must come out exactly, with and
// without libc's symbols, main_arena must be found by its shape, and a
// corrupt size must end the walk with a warning.
//
// DISABLED_WriteHeapSeeds writes the heap_walk_fuzzer's seeds:
//   CPPDIAG_HEAP_CORPUS_OUT=tests/fuzz/corpus_heap
//   build/release/src/cli/analyze/cli_analyze_unit_test
//       --gtest_also_run_disabled_tests --gtest_filter='*WriteHeapSeeds*'
#include "cli/analyze/glibc_heap.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cli/analyze/testing/core_builder.h"
#include "common/io.h"
#include "support/status_matchers.h"

namespace cppdiag::cli::analyze {
namespace {

using ::cppdiag::testing::IsOk;

constexpr uint64_t kLibc = 0x7f0000000000, kArena = kLibc + 0x100, kMp = kLibc + 0x1000;
constexpr uint64_t kHeap = 0x555555560000, kHeapSize = 0x2000, kMmap = 0x7f1000000000;
constexpr uint64_t kKey = 0x1234567890abcdef;
// The chunks, in address order.
constexpr uint64_t kTcacheStruct = kHeap, kObject = kHeap + 0x290, kTcached = kObject + 0x30,
                   kFast = kTcached + 0x80, kFree = kFast + 0x20, kAfterFree = kFree + 0x100,
                   kTop = kAfterFree + 0x40;

struct Memory {
  uint64_t base;
  std::string bytes;
  void Put(uint64_t addr, uint64_t v) { std::memcpy(bytes.data() + (addr - base), &v, 8); }
  void Put32(uint64_t addr, uint32_t v) { std::memcpy(bytes.data() + (addr - base), &v, 4); }
};

std::vector<uint8_t> SyntheticHeapCore(uint64_t object_size_word = 0x31) {
  Memory libc{kLibc, std::string(0x2000, '\0')};
  for (uint64_t i = 0; i < 127; ++i) {  // empty bins point at themselves
    libc.Put(kArena + 112 + 16 * i, kArena + 96 + 16 * i);
    libc.Put(kArena + 120 + 16 * i, kArena + 96 + 16 * i);
  }
  libc.Put(kArena + 112, kFree);  // the unsorted bin holds kFree
  libc.Put(kArena + 120, kFree);
  libc.Put(kArena + 16, kFast);  // fastbinsY[0]: the 32-byte chunk
  libc.Put(kArena + 96, kTop);
  libc.Put(kArena + 2160, kArena);  // next: itself, the only arena
  libc.Put(kArena + 2184, kHeapSize);
  libc.Put32(kMp + 60, 1);    // mp_.n_mmaps (2.35+ layout, 136 bytes)
  libc.Put(kMp + 96, kHeap);  // mp_.sbrk_base

  Memory heap{kHeap, std::string(kHeapSize, '\0')};
  heap.Put(kTcacheStruct + 8, 0x291);
  heap.Put(kTcacheStruct + 16 + 6 * 2, 1);                    // counts[6] (128-byte chunks)
  heap.Put(kTcacheStruct + 16 + 128 + 6 * 8, kTcached + 16);  // entries[6]
  heap.Put(kObject + 8, object_size_word);
  heap.Put(kObject + 16, 0x401000);  // a "vtable"
  heap.Put(kTcached + 8, 0x81);
  heap.Put(kTcached + 16, (kTcached + 16) >> 12);  // next: NULL, safe-linked
  heap.Put(kTcached + 24, kKey);
  heap.Put(kFast + 8, 0x21);
  heap.Put(kFast + 16, (kFast + 16) >> 12);  // fd: NULL, safe-linked
  heap.Put(kFree + 8, 0x101);
  heap.Put(kFree + 16, kArena + 96);  // fd, bk: the unsorted bin
  heap.Put(kFree + 24, kArena + 96);
  heap.Put(kAfterFree, 0x100);  // prev_size; PREV_INUSE clear
  heap.Put(kAfterFree + 8, 0x40);
  heap.Put(kTop + 8, (kHeap + kHeapSize - kTop) | 1);

  Memory mmapped{kMmap, std::string(0x2000, '\0')};
  mmapped.Put(kMmap + 8, 0x2002);

  testing::CoreBuilder b;
  b.Note("CORE", NT_PRSTATUS, testing::PrstatusDesc(7));
  b.Note("CORE", NT_FILE,
         testing::FileNoteDesc({{kLibc, kLibc + 0x2000, 0, "/lib/x86_64-linux-gnu/libc.so.6"}}));
  b.Load(heap.base, heap.bytes.size(), heap.bytes);
  b.Load(kLibc, libc.bytes.size(), libc.bytes);
  b.Load(kMmap, mmapped.bytes.size(), mmapped.bytes);
  return b.Build().bytes;
}

struct Walked {
  GlibcHeap heap;
  std::map<uint64_t, ChunkState> states;
};

Walked Walk(const std::vector<uint8_t>& bytes, const GlibcHeapRoots& roots) {
  auto core = CoreFile::FromBytes(bytes);
  EXPECT_THAT(core, IsOk());
  auto notes = DecodeNotes(*core);
  EXPECT_THAT(notes, IsOk());
  auto heap = WalkGlibcHeap(*core, *notes, roots);
  EXPECT_THAT(heap, IsOk());
  Walked w{*heap, {}};
  for (const HeapChunk& c : w.heap.chunks) w.states[c.address] = c.state;
  return w;
}

GlibcHeapRoots WithSymbols() {
  return {.main_arena = kArena, .mp = kMp, .mp_size = 136, .tcache_key = kKey, .found_by = "t"};
}

void ExpectEveryChunk(const Walked& w) {
  std::map<uint64_t, ChunkState> expected = {{kTcacheStruct, ChunkState::kInUse},
                                             {kObject, ChunkState::kInUse},
                                             {kTcached, ChunkState::kTcache},
                                             {kFast, ChunkState::kFastbin},
                                             {kFree, ChunkState::kFree},
                                             {kAfterFree, ChunkState::kInUse},
                                             {kTop, ChunkState::kTop},
                                             {kMmap, ChunkState::kMmapped}};
  EXPECT_EQ(w.states, expected);
  ASSERT_EQ(w.heap.arenas.size(), 1u);
  EXPECT_EQ(w.heap.arenas[0].in_use, 3u);
  EXPECT_EQ(w.heap.arenas[0].free, 3u);
  EXPECT_EQ(w.heap.arenas[0].top, kTop);
  EXPECT_EQ(w.heap.mmapped, 1u);
}

TEST(GlibcHeapTest, WalksEveryChunkFromTheSymbols) {
  Walked w = Walk(SyntheticHeapCore(), WithSymbols());
  ExpectEveryChunk(w);
  EXPECT_EQ(w.heap.mp_n_mmaps, 1);
  EXPECT_TRUE(w.heap.warnings.empty()) << w.heap.warnings.front();
}

TEST(GlibcHeapTest, WithoutSymbolsFindsTheArenaByItsShapeAndTheKeyInTheTcache) {
  std::vector<uint8_t> bytes = SyntheticHeapCore();
  auto core = CoreFile::FromBytes(bytes);
  ASSERT_THAT(core, IsOk());
  EXPECT_EQ(FindArenasByShape(*core, kLibc, kLibc + 0x2000), std::vector<uint64_t>{kArena});
  EXPECT_TRUE(FindArenasByShape(*core, kHeap, kHeap + kHeapSize).empty());
  Walked w = Walk(bytes, {.main_arena = kArena, .found_by = "shape"});
  ExpectEveryChunk(w);
  EXPECT_EQ(w.heap.mp_n_mmaps, -1);
  EXPECT_TRUE(w.heap.warnings.empty()) << w.heap.warnings.front();
}

TEST(GlibcHeapTest, ACorruptSizeEndsTheWalkWithAWarning) {
  Walked w = Walk(SyntheticHeapCore(0x4141), WithSymbols());
  EXPECT_EQ(w.states.count(kTcacheStruct), 1u);
  EXPECT_EQ(w.states.count(kTcached), 0u);
  ASSERT_FALSE(w.heap.warnings.empty());
  EXPECT_NE(w.heap.warnings[0].find("corrupt size 0x4141"), std::string::npos)
      << w.heap.warnings[0];
}

TEST(GlibcHeapTest, AnUnknownMallocParLayoutIsRefused) {
  auto core = CoreFile::FromBytes(SyntheticHeapCore());
  ASSERT_THAT(core, IsOk());
  GlibcHeapRoots roots = WithSymbols();
  roots.mp_size = 100;
  auto heap = WalkGlibcHeap(*core, CoreNotes{}, roots);
  ASSERT_FALSE(heap.ok());
  EXPECT_NE(heap.error().message().find("malloc_par is 100 bytes"), std::string::npos);
}

// heap_walk_fuzzer's input: its roots (4 words: main_arena, mp_ or 0,
// sizeof mp_, tcache_key or 0), then the core.
std::string FuzzInput(const GlibcHeapRoots& r, const std::vector<uint8_t>& core) {
  uint64_t words[4] = {r.main_arena, r.mp.value_or(0), r.mp_size, r.tcache_key.value_or(0)};
  std::string out(reinterpret_cast<const char*>(words), sizeof words);
  return out + std::string(core.begin(), core.end());
}

TEST(GlibcHeapTest, DISABLED_WriteHeapSeeds) {
  const char* out = std::getenv("CPPDIAG_HEAP_CORPUS_OUT");
  ASSERT_NE(out, nullptr) << "set CPPDIAG_HEAP_CORPUS_OUT to the corpus directory";
  std::vector<uint8_t> core = SyntheticHeapCore();
  ASSERT_THAT(
      WriteStringToFile(std::string(out) + "/symbols.heap", FuzzInput(WithSymbols(), core), 0644),
      IsOk());
  ASSERT_THAT(WriteStringToFile(std::string(out) + "/shape.heap",
                                FuzzInput({.main_arena = kArena}, core), 0644),
              IsOk());
}

}  // namespace
}  // namespace cppdiag::cli::analyze
