#include "diag/dump/dump_type.h"

#include <string>

namespace cppdiag {

Result<DumpType> ParseDumpType(std::string_view text) {
  if (text == "full" || text == "Full" || text == "4") return DumpType::kFull;
  if (text == "heap" || text == "Heap" || text == "2") return DumpType::kHeap;
  if (text == "mini" || text == "Mini" || text == "1") return DumpType::kMini;
  if (text == "triage" || text == "Triage" || text == "3") return DumpType::kTriage;
  return Error::Invalid("invalid dump type '" + std::string(text) +
                        "': expected full, heap, mini, triage (or 4, 2, 1, 3)");
}

const char* DumpTypeName(DumpType type) {
  switch (type) {
    case DumpType::kFull:
      return "full";
    case DumpType::kHeap:
      return "heap";
    case DumpType::kMini:
      return "mini";
    case DumpType::kTriage:
      return "triage";
  }
  return "?";
}

}  // namespace cppdiag
