// The kinds of dump (DESIGN.md): what memory each stores.
//   full    every readable mapping
//   heap    anonymous and writable memory, stacks, module headers (the default)
//   mini    thread stacks, registers, the module list
//   triage  like mini, with no memory that is not a stack
//
// kDumpTypes is the one list of them: the runtime parses CPPDIAG_DUMP_TYPE
// and requests with it, the CLI derives --type's help and check from it
// (all but DumpTypeName is header-only: the CLI needs no link to the dump
// engine).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace cppdiag {

// The values are .NET's dump type numbers.
enum class DumpType { kMini = 1, kHeap = 2, kTriage = 3, kFull = 4 };

struct DumpTypeInfo {
  DumpType type;
  const char* name;         // "full": what DumpTypeName gives
  const char* dotnet_name;  // "Full": dotnet-dump's spelling, also accepted
  const char* number;       // "4": .NET's number, also accepted
};

// In the order help texts and errors list them.
inline constexpr DumpTypeInfo kDumpTypes[] = {
    {DumpType::kFull, "full", "Full", "4"},
    {DumpType::kHeap, "heap", "Heap", "2"},
    {DumpType::kMini, "mini", "Mini", "1"},
    {DumpType::kTriage, "triage", "Triage", "3"},
};

// The entry `text` names (its name, .NET's spelling or number), or null.
constexpr const DumpTypeInfo* FindDumpType(std::string_view text) {
  for (const DumpTypeInfo& t : kDumpTypes) {
    if (text == t.name || text == t.dotnet_name || text == t.number) return &t;
  }
  return nullptr;
}

// "full, heap, mini, triage (or 4, 2, 1, 3)": what FindDumpType accepts.
inline std::string DumpTypeChoices() {
  std::string names, numbers;
  for (const DumpTypeInfo& t : kDumpTypes) {
    names += (names.empty() ? "" : ", ") + std::string(t.name);
    numbers += (numbers.empty() ? "" : ", ") + std::string(t.number);
  }
  return names + " (or " + numbers + ")";
}

// "full", "heap", "mini", "triage", or .NET's numbers 4, 2, 1, 3 (and
// dotnet-dump's "Full"...); fails with "invalid dump type 'x': expected ...".
inline Result<DumpType> ParseDumpType(std::string_view text) {
  if (const DumpTypeInfo* t = FindDumpType(text)) return t->type;
  return Error::Invalid("invalid dump type '" + std::string(text) + "': expected " +
                        DumpTypeChoices());
}

// "full", "heap"... Async-signal-safe (a string literal).
const char* DumpTypeName(DumpType type);

}  // namespace cppdiag
