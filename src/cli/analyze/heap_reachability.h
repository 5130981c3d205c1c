// Which allocations of a glibc heap the program can still reach: a
// conservative scan (any aligned word that points into an allocation in use
// holds it, interior pointers too) from the roots (every thread's registers,
// its stack from rsp down to the stack's top, red zone included, and every
// other writable mapping that is not heap: modules' data and bss, TLS,
// anonymous memory), through the allocations reached. What no root reaches
// is leaked (chap's "unreferenced"; like a conservative garbage collector's
// mark phase). For each reached allocation it keeps where the pointer that
// first reached it was, so a path back to a root can be shown (`heap who`).
//
//   CPPDIAG_ASSIGN_OR_RETURN(Reachability r, FindReachable(session, heap));
//   for (size_t i = 0; i < r.allocations.size(); ++i) if (!r.reached(i)) ...
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/analyze/glibc_heap.h"
#include "cli/analyze/session.h"

namespace cppdiag::cli::analyze {

struct Referrer {
  uint64_t address = 0;  // the word that pointed (memory), 0 for a register
  pid_t tid = 0;         // a register's thread
  int reg = -1;          // a register (index into kX86RegisterNames), -1: memory
};

struct Reachability {
  std::vector<const HeapChunk*> allocations;      // in use and mmapped, by address
  std::vector<std::optional<Referrer>> referrer;  // per allocation; nullopt: not reached
  bool reached(size_t i) const { return referrer[i].has_value(); }
  // The allocation holding `address` (header to end), or -1.
  int64_t Find(uint64_t address) const;
};

// `heap` must stay alive as long as the result (it points into heap.chunks).
Reachability FindReachable(Session& session, const GlibcHeap& heap);

}  // namespace cppdiag::cli::analyze
