// File and descriptor helpers: EINTR handled here, once.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <string>

#include "common/scoped_fd.h"
#include "common/status.h"

namespace cppdiag {

// Retries `f()` while it fails with EINTR. Async-signal-safe.
template <typename F>
auto HandleEintr(F&& f) {
  decltype(f()) result;
  do {
    result = f();
  } while (result == -1 && errno == EINTR);
  return result;
}

}  // namespace cppdiag

#define HANDLE_EINTR(expr) ::cppdiag::HandleEintr([&] { return (expr); })

namespace cppdiag {

// Async-signal-safe: write all of `buf` or fail. Returns 0 or an errno value
// (ENOSPC for a write that made no progress).
int WriteAllRaw(int fd, const void* buf, size_t len);

// Async-signal-safe: like WriteAllRaw on a socket, with MSG_NOSIGNAL, so a peer
// that went away yields EPIPE rather than a SIGPIPE that kills the process.
int SendAllRaw(int fd, const void* buf, size_t len);

// Async-signal-safe: read exactly `len` bytes. Returns 0, an errno value, or
// EPIPE when the peer closed before `len` bytes arrived.
int ReadExactlyRaw(int fd, void* buf, size_t len);

Status WriteAll(int fd, const void* buf, size_t len, const char* what = "");
Status ReadExactly(int fd, void* buf, size_t len, const char* what = "");

// open(2) with O_CLOEXEC added.
Result<ScopedFd> OpenFile(const std::string& path, int flags, mode_t mode = 0);

// Reads a whole file (procfs and sysfs files report size 0, so this reads until
// EOF). Fails with EFBIG past `max_bytes`.
Result<std::string> ReadFileToString(const std::string& path, size_t max_bytes = 64 << 20);

// Writes `content` to `path` (creating or truncating it).
Status WriteStringToFile(const std::string& path, std::string_view content, mode_t mode = 0644);

}  // namespace cppdiag
