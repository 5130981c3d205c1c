// heap leaked [N]: the allocations in use that no root reaches (registers,
// stacks, writable module data, TLS, non-heap anonymous memory), through a
// conservative scan of the heap graph (heap_reachability.h), grouped as in
// `heap types`.
#include <fmt/format.h>

#include "cli/analyze/commands/heap_subcommands.h"
#include "cli/analyze/format.h"
#include "cli/analyze/heap_reachability.h"

namespace cppdiag::cli::analyze {

Result<CommandOutput> HeapLeaked(Session& session, const CommandArgs& args) {
  CPPDIAG_ASSIGN_OR_RETURN(uint64_t top, TopArgument(args, "heap leaked [N]"));
  CPPDIAG_ASSIGN_OR_RETURN(GlibcHeap heap, ReadGlibcHeap(session));
  CPPDIAG_ASSIGN_OR_RETURN(CoreDebugInfo * debug, session.debug());
  Reachability r = FindReachable(session, heap);
  std::vector<const HeapChunk*> leaked;
  uint64_t bytes = 0;
  for (size_t i = 0; i < r.allocations.size(); ++i) {
    if (r.reached(i)) continue;
    leaked.push_back(r.allocations[i]);
    bytes += r.allocations[i]->size;
  }
  CommandOutput groups = GroupChunks(session, *debug, leaked, top);
  CommandOutput out;
  out.text = fmt::format("{} of {} allocations in use are reached by no root: {}\n", leaked.size(),
                         r.allocations.size(), HumanBytes(bytes));
  if (!leaked.empty()) out.text += groups.text;
  for (const std::string& w : heap.warnings) out.text += "warning: " + w + "\n";
  out.json = {{"allocations", r.allocations.size()},
              {"leaked", leaked.size()},
              {"leaked_bytes", bytes},
              {"groups", std::move(groups.json)},
              {"warnings", heap.warnings}};
  return out;
}

}  // namespace cppdiag::cli::analyze
