// The `heap` subcommands, each in its own file: `heap types` (heap_types.cc).
#pragma once

#include "cli/analyze/command.h"

namespace cppdiag::cli::analyze {

// heap types [N]: allocations in use grouped by type, the top N (default 30).
Result<CommandOutput> HeapTypes(Session& session, const CommandArgs& args);

}  // namespace cppdiag::cli::analyze
