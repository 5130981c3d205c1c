// Async-signal-safe: nothing here allocates, locks or uses stdio.
#include "diag/dump/process_snapshot.h"

namespace cppdiag::dump {

size_t FindMapping(const ProcessSnapshot& snapshot, uint64_t addr) {
  size_t lo = 0, hi = snapshot.mapping_count();
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const MappingSnapshot& m = snapshot.mapping(mid);
    if (addr < m.start) {
      hi = mid;
    } else if (addr >= m.end) {
      lo = mid + 1;
    } else {
      return mid;
    }
  }
  return SIZE_MAX;
}

}  // namespace cppdiag::dump
