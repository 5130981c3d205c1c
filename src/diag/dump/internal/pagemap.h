// Page residency from a /proc/<pid>/pagemap descriptor, as QueryPages()
// reports it (process_snapshot.h's PageFlags), for the self and the ptrace
// snapshot alike.
//
// Async-signal-safe: one pread per 512 pages into a stack buffer.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cppdiag::dump::internal {

// Flags of the npages pages from addr (page-aligned); 0, or an errno value
// (EIO for a short read).
int ReadPageFlags(int pagemap_fd, uint64_t addr, size_t npages, uint8_t* flags);

}  // namespace cppdiag::dump::internal
