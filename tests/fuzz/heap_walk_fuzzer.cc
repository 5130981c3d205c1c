// libFuzzer target: glibc's heap walked (WalkGlibcHeap, what `dump analyze
// heap`, `heap types`, `heap leaked` and `heap who` read) from any roots in
// any core, and main_arena looked for by its shape (FindArenasByShape) in
// its writable memory. The input is 4 words of roots (main_arena, mp_ or 0,
// sizeof mp_, tcache_key or 0) then the core's bytes. Either one printable
// line of error or chunks that lie in memory, in order within each heap,
// with warnings; never a crash, a read past the input or a hang.
//
//   CMAKE_CXX_COMPILER_LAUNCHER=ccache cmake --preset fuzz
//   cmake --build --preset fuzz --target heap_walk_fuzzer
//   mkdir -p /tmp/heap-corpus && cp tests/fuzz/corpus_heap/* /tmp/heap-corpus/
//   build/fuzz/tests/fuzz/heap_walk_fuzzer -max_len=65536 -max_total_time=600 /tmp/heap-corpus
// Seeds: glibc_heap_test.cc's synthetic heap (DISABLED_WriteHeapSeeds).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli/analyze/core_file.h"
#include "cli/analyze/core_notes.h"
#include "cli/analyze/glibc_heap.h"

using namespace cppdiag;
using namespace cppdiag::cli::analyze;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckLine(const std::string& m) {
  Check(!m.empty());
  for (char c : m) Check(c >= 0x20 && c < 0x7f);
}

void CheckWalk(const CoreFile& core, const CoreNotes& notes, const GlibcHeapRoots& roots) {
  auto heap = WalkGlibcHeap(core, notes, roots);
  if (!heap.ok()) {
    CheckLine(heap.error().message());
    return;
  }
  for (const std::string& w : heap->warnings) CheckLine(w);
  for (const HeapChunk& c : heap->chunks) {
    Check(c.size >= 16 && c.address + c.size > c.address);
    Check(c.arena == UINT32_MAX || c.arena < heap->arenas.size());
    Check(core.FindLoad(c.address + 8) != nullptr);  // its size word was read
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kHeader = 32;
  if (size < kHeader) return 0;
  uint64_t w[4];
  std::memcpy(w, data, sizeof w);
  auto core = CoreFile::FromBytes(std::vector<uint8_t>(data + kHeader, data + size));
  if (!core.ok()) return 0;  // the core reader's own fuzzer covers this
  auto decoded = DecodeNotes(*core);
  CoreNotes notes = decoded.ok() ? std::move(*decoded) : CoreNotes{};
  GlibcHeapRoots roots{.main_arena = w[0], .found_by = "fuzz"};
  if (w[1] != 0) {
    roots.mp = w[1];
    roots.mp_size = w[2];
  }
  if (w[3] != 0) roots.tcache_key = w[3];
  CheckWalk(*core, notes, roots);
  // By shape, in every writable segment (at most two walks).
  size_t walks = 0;
  for (const LoadSegment& s : core->loads()) {
    if (!(s.flags & 2)) continue;
    for (uint64_t arena : FindArenasByShape(*core, s.vaddr, s.end())) {
      Check(arena >= s.vaddr && arena + kMallocStateSize <= s.end());
      if (walks++ < 2) CheckWalk(*core, notes, {.main_arena = arena, .found_by = "shape"});
    }
  }
  return 0;
}
