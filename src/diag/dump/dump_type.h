// The kinds of dump (DESIGN.md): what memory each stores.
//   full    every readable mapping
//   heap    anonymous and writable memory, stacks, module headers (the default)
//   mini    thread stacks, registers, the module list
//   triage  like mini, with no memory that is not a stack
#pragma once

#include <string_view>

#include "common/status.h"

namespace cppdiag {

// The values are .NET's dump type numbers.
enum class DumpType { kMini = 1, kHeap = 2, kTriage = 3, kFull = 4 };

// "full", "heap", "mini", "triage", or .NET's numbers 4, 2, 1, 3.
Result<DumpType> ParseDumpType(std::string_view text);

// "full", "heap"... Async-signal-safe (a string literal).
const char* DumpTypeName(DumpType type);

}  // namespace cppdiag
