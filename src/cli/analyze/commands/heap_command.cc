// heap: glibc malloc's heap read from the core's memory (no instrumentation
// needed): each arena with its heaps, chunks in use and free (bins,
// fastbins, tcache), its top chunk; the chunks mmapped on their own; and
// what could not be read, as warnings.
#include <fmt/format.h>

#include "cli/analyze/command.h"
#include "cli/analyze/commands/heap_subcommands.h"
#include "cli/analyze/format.h"
#include "cli/analyze/glibc_heap_reader.h"

namespace cppdiag::cli::analyze {
namespace {

Result<CommandOutput> Summary(Session& session) {
  CPPDIAG_ASSIGN_OR_RETURN(GlibcHeap heap, ReadGlibcHeap(session));
  CommandOutput out;
  uint64_t in_use = 0, in_use_bytes = 0, free = 0, free_bytes = 0;
  nlohmann::json arenas = nlohmann::json::array();
  out.text = fmt::format("main_arena {:#x}, found by {}\n\n", heap.main_arena, heap.found_by);
  out.text +=
      fmt::format("{:<18} {:>5} {:>10} {:>12} {:>10} {:>12} {:>8} {:>8} {:>12}\n", "ARENA", "HEAPS",
                  "IN USE", "BYTES", "FREE", "BYTES", "FASTBIN", "TCACHE", "TOP SIZE");
  for (const ArenaSummary& a : heap.arenas) {
    in_use += a.in_use;
    in_use_bytes += a.in_use_bytes;
    free += a.free;
    free_bytes += a.free_bytes;
    out.text += fmt::format("{:<18} {:>5} {:>10} {:>12} {:>10} {:>12} {:>8} {:>8} {:>12}\n",
                            ShortAddress(a.address) + (a.main ? " (main)" : ""), a.heaps, a.in_use,
                            HumanBytes(a.in_use_bytes), a.free, HumanBytes(a.free_bytes), a.fastbin,
                            a.tcache, HumanBytes(a.top_size));
    arenas.push_back({{"address", a.address},
                      {"main", a.main},
                      {"heaps", a.heaps},
                      {"system_mem", a.system_mem},
                      {"in_use", a.in_use},
                      {"in_use_bytes", a.in_use_bytes},
                      {"free", a.free},
                      {"free_bytes", a.free_bytes},
                      {"fastbin", a.fastbin},
                      {"tcache", a.tcache},
                      {"top", a.top},
                      {"top_size", a.top_size}});
  }
  out.text +=
      fmt::format("\n{} arenas: {} chunks in use ({}), {} free ({}); {} mmapped chunks ({}{})\n",
                  heap.arenas.size(), in_use, HumanBytes(in_use_bytes), free,
                  HumanBytes(free_bytes), heap.mmapped, HumanBytes(heap.mmapped_bytes),
                  heap.mp_n_mmaps >= 0 ? fmt::format("; glibc counts {}", heap.mp_n_mmaps) : "");
  for (const std::string& w : heap.warnings) out.text += "warning: " + w + "\n";
  out.json = {{"main_arena", heap.main_arena},
              {"found_by", heap.found_by},
              {"arenas", std::move(arenas)},
              {"in_use", in_use},
              {"in_use_bytes", in_use_bytes},
              {"free", free},
              {"free_bytes", free_bytes},
              {"mmapped", heap.mmapped},
              {"mmapped_bytes", heap.mmapped_bytes},
              {"warnings", heap.warnings}};
  if (heap.mp_n_mmaps >= 0) out.json["mp_n_mmaps"] = heap.mp_n_mmaps;
  return out;
}

Result<CommandOutput> Heap(Session& session, const CommandArgs& args) {
  if (args.empty()) return Summary(session);
  CommandArgs rest(args.begin() + 1, args.end());
  if (args[0] == "types") return HeapTypes(session, rest);
  if (args[0] == "leaked") return HeapLeaked(session, rest);
  if (args[0] == "who") return HeapWho(session, rest);
  return Error::Invalid(fmt::format(
      "unknown heap command '{}' (heap, heap types [N], heap leaked [N], heap who ADDR)",
      Printable(args[0])));
}

}  // namespace

const Command kHeapCommand{"heap", "heap [types|leaked|who]",
                           "glibc malloc's heap from the core: arenas, chunks in use and free, "
                           "mmapped and top chunks; types [N]: in use by vtable type, else size; "
                           "leaked [N]: what no root reaches; who ADDR: a root's path to it",
                           Heap};

}  // namespace cppdiag::cli::analyze
