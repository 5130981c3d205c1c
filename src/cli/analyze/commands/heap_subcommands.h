// The `heap` subcommands, each in its own file: `heap types` (heap_types.cc,
// with the grouping they share), `heap leaked` (heap_leaked.cc), `heap who` (heap_who.cc).
#pragma once

#include <vector>

#include "cli/analyze/command.h"
#include "cli/analyze/glibc_heap_reader.h"

namespace cppdiag::cli::analyze {

// heap types [N]: allocations in use grouped by type, the top N (default 30).
Result<CommandOutput> HeapTypes(Session& session, const CommandArgs& args);
// heap leaked [N]: allocations no root reaches, grouped as heap types.
Result<CommandOutput> HeapLeaked(Session& session, const CommandArgs& args);
// heap who ADDR: the chain of pointers from a root to ADDR's allocation.
Result<CommandOutput> HeapWho(Session& session, const CommandArgs& args);

// `chunks` grouped by vtable type, else by chunk size: count and bytes,
// largest first, the top `top` groups.
CommandOutput GroupChunks(Session& session, CoreDebugInfo& debug,
                          const std::vector<const HeapChunk*>& chunks, uint64_t top);
// N of "heap types [N]" (30 when absent).
Result<uint64_t> TopArgument(const CommandArgs& args, const char* usage);

}  // namespace cppdiag::cli::analyze
