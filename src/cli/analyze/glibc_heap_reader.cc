#include "cli/analyze/glibc_heap_reader.h"

#include <fmt/format.h>

#include <optional>
#include <string>
#include <vector>

#include "diag/dump/dump_type.h"

namespace cppdiag::cli::analyze {
namespace {

// libc's own module, or for a static program (no libc.so) the executable.
const ModuleInfo* LibcModule(const CoreDebugInfo& debug) {
  const ModuleInfo* exe = nullptr;
  for (const ModuleInfo& m : debug.modules()) {
    if (m.name.starts_with("libc.so")) return &m;
    if (m.executable) exe = &m;
  }
  return exe;
}

std::string NoMainArena(const CoreDebugInfo& debug) {
  for (const ModuleInfo& m : debug.modules()) {
    if (!m.name.starts_with("libc.so")) continue;
    return fmt::format(
        "glibc's main_arena was found neither in {}'s symbol table nor by its shape in its "
        "data (malloc may never have run); its debug file may help (Debian: libc6-dbg; build "
        "id {})",
        m.name, m.build_id.empty() ? "unknown" : m.build_id);
  }
  std::string others;
  for (const ModuleInfo& m : debug.modules()) {
    for (const char* alloc : {"jemalloc", "tcmalloc", "mimalloc"}) {
      if (m.name.find(alloc) != std::string::npos) others = " (" + m.name + " is loaded)";
    }
  }
  return "no glibc malloc arena in this process: its allocator is not glibc malloc" + others;
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
  const ModuleInfo* libc = LibcModule(*debug);
  if (libc == nullptr) return Error::Invalid(NoMainArena(*debug));
  GlibcHeapRoots roots;
  std::string prefix = libc->name.starts_with("libc.so") ? "libc.so" : libc->name;
  auto main_arena = debug->FindSymbol(prefix, "main_arena");
  auto mp = debug->FindSymbol(prefix, "mp_");
  if (main_arena && mp) {
    if (main_arena->size != kMallocStateSize) {
      return Error::Invalid(fmt::format(
          "glibc's malloc_state is {} bytes here; cppdiag reads the x86-64 layout of glibc 2.26 "
          "and later (2200)",
          main_arena->size));
    }
    roots.main_arena = main_arena->address;
    roots.mp = mp->address;
    roots.mp_size = mp->size;
    roots.found_by = fmt::format("{}'s symbols", libc->name);
    if (auto key = debug->FindSymbol(prefix, "tcache_key")) {
      roots.tcache_key = CoreWords(session.core()).At(key->address);
    }
  } else {
    // libc's data and, past the file's end, its bss.
    constexpr uint64_t kBssSlack = uint64_t{1} << 20;
    std::vector<uint64_t> found =
        FindArenasByShape(session.core(), libc->start, libc->end + kBssSlack);
    if (found.size() != 1) {
      if (found.size() > 1) {
        return Error::Invalid(fmt::format(
            "{} places in {}'s data look like glibc's main_arena; install libc's debug file "
            "(Debian: libc6-dbg) to tell which",
            found.size(), libc->name));
      }
      return Error::Invalid(NoMainArena(*debug));
    }
    roots.main_arena = found.front();
    roots.found_by = fmt::format("its shape in {}'s data (no symbol)", libc->name);
  }
  return WalkGlibcHeap(session.core(), notes, roots);
}

}  // namespace cppdiag::cli::analyze
