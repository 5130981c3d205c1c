#include "diag/dump/dump_type.h"

namespace cppdiag {

const char* DumpTypeName(DumpType type) {
  for (const DumpTypeInfo& t : kDumpTypes) {
    if (t.type == type) return t.name;
  }
  return "?";
}

}  // namespace cppdiag
