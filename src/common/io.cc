#include "common/io.h"

#include <sys/socket.h>
#include <unistd.h>

namespace cppdiag {

int WriteAllRaw(int fd, const void* buf, size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = HANDLE_EINTR(::write(fd, p, len));
    if (n < 0) return errno;
    if (n == 0) return ENOSPC;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return 0;
}

int SendAllRaw(int fd, const void* buf, size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = HANDLE_EINTR(::send(fd, p, len, MSG_NOSIGNAL));
    if (n < 0) return errno;
    if (n == 0) return EPIPE;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return 0;
}

int ReadExactlyRaw(int fd, void* buf, size_t len) {
  char* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = HANDLE_EINTR(::read(fd, p, len));
    if (n < 0) return errno;
    if (n == 0) return EPIPE;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return 0;
}

Status WriteAll(int fd, const void* buf, size_t len, const char* what) {
  if (int err = WriteAllRaw(fd, buf, len)) return Error(err, "write", what);
  return OkStatus();
}

Status ReadExactly(int fd, void* buf, size_t len, const char* what) {
  if (int err = ReadExactlyRaw(fd, buf, len)) return Error(err, "read", what);
  return OkStatus();
}

Result<ScopedFd> OpenFile(const std::string& path, int flags, mode_t mode) {
  int fd = HANDLE_EINTR(::open(path.c_str(), flags | O_CLOEXEC, mode));
  if (fd < 0) return Error::FromErrno("open", path);
  return ScopedFd(fd);
}

Result<std::string> ReadFileToString(const std::string& path, size_t max_bytes) {
  CPPDIAG_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(path, O_RDONLY));
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = HANDLE_EINTR(::read(fd.get(), buf, sizeof buf));
    if (n < 0) return Error::FromErrno("read", path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) return Error(EFBIG, "read", path);
  }
  return out;
}

Status WriteStringToFile(const std::string& path, std::string_view content, mode_t mode) {
  CPPDIAG_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(path, O_WRONLY | O_CREAT | O_TRUNC, mode));
  if (int err = WriteAllRaw(fd.get(), content.data(), content.size())) {
    return Error(err, "write", path);
  }
  return OkStatus();
}

}  // namespace cppdiag
