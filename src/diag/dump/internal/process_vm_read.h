// process_vm_readv of another (or this) process's memory, for the self and
// the ptrace snapshot alike.
//
// Async-signal-safe: one syscall, iovecs on the stack.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace cppdiag::dump::internal {

// Reads up to `len` bytes from `addr` of process `pid` into `out`. The kernel
// never splits a remote iovec, so the remote side goes one iovec per page
// (at most 256 pages a call): the count then stops at the first unreadable
// page. Returns the bytes read, or -1 with errno.
ssize_t ReadPagesWithProcessVm(pid_t pid, uint64_t addr, uint8_t* out, size_t len);

}  // namespace cppdiag::dump::internal
