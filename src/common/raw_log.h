// A logger for places where the normal one must not run: signal handlers,
// allocator hooks and code after fork() in a multi-threaded process.
//
// Async-signal-safe: no allocation, no locks, no stdio. Formats into a fixed
// buffer on the stack and writes it with one write(2).
//
//   RawLine line;
//   line.Add("cppdiag: dump failed: ").Add(ErrnoName(err)).Add(" (").Dec(err).Add(")");
//   line.WriteTo(STDERR_FILENO);
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cppdiag {

class RawLine {
 public:
  RawLine& Add(std::string_view s);
  RawLine& Add(const char* s) { return Add(std::string_view(s == nullptr ? "(null)" : s)); }
  RawLine& Dec(int64_t v);
  RawLine& Udec(uint64_t v);
  RawLine& Hex(uint64_t v);  // 0x-prefixed
  // Appends a newline and writes the line; text past the buffer is cut.
  void WriteTo(int fd);

  std::string_view view() const { return {buf_, len_}; }

 private:
  char buf_[512];
  size_t len_ = 0;
};

// Async-signal-safe: the errno's symbolic name ("ENOSPC", "ETIMEDOUT"), from
// glibc's strerrorname_np, or "E?" for a value glibc does not know.
const char* ErrnoName(int err);
// Async-signal-safe: the signal's abbreviation without "SIG" ("SEGV",
// "ABRT"), from glibc's sigabbrev_np, or "?" (real-time signals too).
const char* SignalAbbrev(int sig);

}  // namespace cppdiag
