// Async-signal-safe: nothing here allocates, locks or uses stdio.
#include "common/raw_log.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/async_safe.h"
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
  char digits[kMaxDecimalChars];
  return Add(std::string_view(digits, FormatDecimal(v, digits, sizeof digits)));
}

RawLine& RawLine::Dec(int64_t v) {
  char digits[kMaxDecimalChars];
  return Add(std::string_view(digits, FormatDecimal(v, digits, sizeof digits)));
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

const char* SignalAbbrev(int sig) {
  const char* name = ::sigabbrev_np(sig);  // glibc's table, like strerrorname_np
  return name != nullptr ? name : "?";
}

}  // namespace cppdiag
