// Async-signal-safe: nothing here allocates, locks or uses stdio.
#include "common/raw_log.h"

#include <unistd.h>

#include <cerrno>

#include "common/io.h"

namespace cppdiag {

RawLine& RawLine::Add(std::string_view s) {
  for (char c : s) {
    if (len_ >= sizeof buf_ - 1) break;  // keep room for the newline
    buf_[len_++] = c;
  }
  return *this;
}

RawLine& RawLine::Udec(uint64_t v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) Add(std::string_view(&tmp[--n], 1));
  return *this;
}

RawLine& RawLine::Dec(int64_t v) {
  if (v < 0) {
    Add("-");
    return Udec(static_cast<uint64_t>(-(v + 1)) + 1);
  }
  return Udec(static_cast<uint64_t>(v));
}

RawLine& RawLine::Hex(uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char tmp[16];
  size_t n = 0;
  do {
    tmp[n++] = kDigits[v & 0xf];
    v >>= 4;
  } while (v != 0);
  Add("0x");
  while (n > 0) Add(std::string_view(&tmp[--n], 1));
  return *this;
}

void RawLine::WriteTo(int fd) {
  buf_[len_] = '\n';
  (void)WriteAllRaw(fd, buf_, len_ + 1);
}

const char* ErrnoName(int err) {
  switch (err) {
    case EPERM:
      return "EPERM (operation not permitted)";
    case ENOENT:
      return "ENOENT (no such file or directory)";
    case EINTR:
      return "EINTR (interrupted)";
    case EIO:
      return "EIO (I/O error)";
    case EBADF:
      return "EBADF (bad file descriptor)";
    case ENOMEM:
      return "ENOMEM (out of memory)";
    case EACCES:
      return "EACCES (permission denied)";
    case EFAULT:
      return "EFAULT (bad address)";
    case EEXIST:
      return "EEXIST (file exists)";
    case ENOTDIR:
      return "ENOTDIR (not a directory)";
    case EISDIR:
      return "EISDIR (is a directory)";
    case EINVAL:
      return "EINVAL (invalid argument)";
    case EMFILE:
      return "EMFILE (too many open files)";
    case EFBIG:
      return "EFBIG (file too large)";
    case ENOSPC:
      return "ENOSPC (no space left on device)";
    case EROFS:
      return "EROFS (read-only file system)";
    case EPIPE:
      return "EPIPE (broken pipe)";
    case ENAMETOOLONG:
      return "ENAMETOOLONG (file name too long)";
    case ELOOP:
      return "ELOOP (too many symbolic links)";
    case EDQUOT:
      return "EDQUOT (disk quota exceeded)";
    case ESRCH:
      return "ESRCH (no such process)";
    case EAGAIN:
      return "EAGAIN (try again)";
    default:
      return "E? (unknown error)";
  }
}

}  // namespace cppdiag
