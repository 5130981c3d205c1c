// Async-signal-safe: no allocation, no locks, no stdio.
#include "diag/dump/internal/pagemap.h"

#include <sys/types.h>
#include <unistd.h>

#include <cerrno>

#include "common/io.h"
#include "diag/dump/process_snapshot.h"

namespace cppdiag::dump::internal {

int ReadPageFlags(int pagemap_fd, uint64_t addr, size_t npages, uint8_t* flags) {
  constexpr size_t kBatch = 512;
  uint64_t entries[kBatch];
  for (size_t done = 0; done < npages;) {
    size_t n = npages - done < kBatch ? npages - done : kBatch;
    off_t off = static_cast<off_t>((addr / 4096 + done) * sizeof(uint64_t));
    ssize_t got = HANDLE_EINTR(::pread(pagemap_fd, entries, n * sizeof(uint64_t), off));
    if (got < static_cast<ssize_t>(n * sizeof(uint64_t))) return got < 0 ? errno : EIO;
    for (size_t i = 0; i < n; ++i) {
      uint64_t e = entries[i];
      flags[done + i] = static_cast<uint8_t>(((e >> 63) & 1 ? kPagePresent : 0) |
                                             ((e >> 62) & 1 ? kPageSwapped : 0) |
                                             ((e >> 61) & 1 ? kPageFileOrSharedAnon : 0));
    }
    done += n;
  }
  return 0;
}

}  // namespace cppdiag::dump::internal
