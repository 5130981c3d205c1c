// Async-signal-safe: nothing here allocates, locks or uses stdio.
#include "diag/dump/process_snapshot.h"

#include "common/async_safe.h"

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

bool ParseVmFlagsLine(std::string_view line, MappingSnapshot* m) {
  constexpr std::string_view kKey = "VmFlags:";
  if (line.substr(0, kKey.size()) != kKey) return false;
  line.remove_prefix(kKey.size());
  bool dd = false, io = false, pf = false, ht = false;
  // Two-letter mnemonics separated by spaces (fs/proc/task_mmu.c).
  for (size_t i = 0; i + 1 < line.size(); ++i) {
    if (line[i] == ' ') continue;
    std::string_view f = line.substr(i, 2);
    dd = dd || f == "dd";
    io = io || f == "io";
    pf = pf || f == "pf";
    ht = ht || f == "ht";
    while (i < line.size() && line[i] != ' ') ++i;
  }
  m->dont_dump = dd;
  m->io = io;
  m->pfn_map = pf;
  m->hugetlb = ht;
  return true;
}

uint32_t ParseCoredumpFilter(std::string_view text) {
  uint64_t v = 0;
  size_t digits = ParseHex(text, &v);
  return digits == 0 || v > UINT32_MAX ? kDefaultCoredumpFilter : static_cast<uint32_t>(v);
}

}  // namespace cppdiag::dump
