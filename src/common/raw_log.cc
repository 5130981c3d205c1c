// Async-signal-safe: nothing here allocates, locks or uses stdio.
#include "common/raw_log.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

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
  // glibc's own table (2.32+): a pointer into static storage, no locale, no allocation.
  const char* name = ::strerrorname_np(err);
  return name != nullptr ? name : "E?";
}

}  // namespace cppdiag
