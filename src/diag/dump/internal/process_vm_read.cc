// Async-signal-safe: no allocation, no locks, no stdio.
#include "diag/dump/internal/process_vm_read.h"

#include <sys/uio.h>

#include "common/io.h"

namespace cppdiag::dump::internal {

// NOLINTNEXTLINE(readability-non-const-parameter): the kernel writes `out` (iov_base)
ssize_t ReadPagesWithProcessVm(pid_t pid, uint64_t addr, uint8_t* out, size_t len) {
  constexpr size_t kMaxIov = 256;
  iovec remote[kMaxIov];
  size_t n = 0, total = 0;
  for (uint64_t a = addr; total < len && n < kMaxIov; ++n) {
    size_t chunk = static_cast<size_t>(((a | 4095) + 1) - a);
    if (chunk > len - total) chunk = len - total;
    remote[n] = iovec{reinterpret_cast<void*>(a), chunk};
    a += chunk;
    total += chunk;
  }
  iovec local{out, total};
  return HANDLE_EINTR(::process_vm_readv(pid, &local, 1, remote, n, 0));
}

}  // namespace cppdiag::dump::internal
