// The async-signal-safe toolkit: what code in signal handlers, allocator
// hooks and after fork() in a multithreaded process may call, in one place.
//
// Every function here is async-signal-safe: no allocation, no locks, no
// stdio, no exceptions. (ScopedMmap's creation is the one exception: it runs
// in normal context, at start; its use and destruction are safe.)
//
//   char digits[kMaxDecimalChars];
//   size_t n = FormatDecimal(-42, digits, sizeof digits);   // "-42", n == 3
//   uint64_t usage = 0;
//   if (ReadDecimalFile("/sys/fs/cgroup/memory.current", &usage)) ...
#pragma once

#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cppdiag {

// The kernel's ids, from the syscalls: right in a raw clone() child too,
// where glibc's cached getpid() would still give the parent's.
pid_t CurrentTid();
pid_t CurrentPid();

// CLOCK_MONOTONIC and CLOCK_REALTIME in nanoseconds.
uint64_t MonotonicNs();
uint64_t RealtimeNs();

// A process-private futex on a 32-bit atomic word. FutexWait sleeps while
// *word == expected, at most `timeout_ns` (negative: no limit); returns 0
// when woken, ETIMEDOUT, EAGAIN (the word had changed) or EINTR. Callers
// loop on their own condition: wake-ups may be spurious.
int FutexWait(std::atomic<uint32_t>* word, uint32_t expected, int64_t timeout_ns = -1);
// Wakes up to `count` waiters (INT32_MAX: all).
void FutexWake(std::atomic<uint32_t>* word, int count);

// Decimal text of a number: writes it (NUL-terminated) and returns its
// length, or 0 (and writes nothing) when `size` cannot hold it.
// kMaxDecimalChars holds any int64_t or uint64_t with its NUL.
inline constexpr size_t kMaxDecimalChars = 22;
size_t FormatDecimal(uint64_t value, char* out, size_t size);
size_t FormatDecimal(int64_t value, char* out, size_t size);
inline size_t FormatDecimal(int value, char* out, size_t size) {
  return FormatDecimal(static_cast<int64_t>(value), out, size);
}

// The unsigned decimal number at the start of `text`: returns how many
// digits it read (0: none, or the number overflows 64 bits).
size_t ParseDecimal(std::string_view text, uint64_t* out);

// The hexadecimal number (no "0x", either case) at the start of `text`:
// returns how many digits it read (0: none, or more than 64 bits).
size_t ParseHex(std::string_view text, uint64_t* out);

// Reads a small file whole (a /proc or cgroup file): at most size - 1 bytes,
// NUL-terminated. Returns the bytes read, or -errno.
ssize_t ReadSmallFile(const char* path, char* buf, size_t size);
// The decimal number at the start of a small file (cgroup usage, a limit).
bool ReadDecimalFile(const char* path, uint64_t* out);

// An anonymous private mapping the runtime owns: its own buffers, reserved
// up front so that nothing needs malloc later. Marked MADV_DONTDUMP, so no
// core (the kernel's or ours) carries them. Move-only; unmapped on
// destruction.
class ScopedMmap {
 public:
  ScopedMmap() = default;
  // Normal context. `populate`: fault the pages in now (MAP_POPULATE), so
  // they are charged to the cgroup before a dump near its limit needs them.
  // !ok() (errno set) when the kernel refuses.
  static ScopedMmap Anonymous(size_t bytes, bool populate);
  ScopedMmap(ScopedMmap&& other) noexcept;
  ScopedMmap& operator=(ScopedMmap&& other) noexcept;
  ScopedMmap(const ScopedMmap&) = delete;
  ScopedMmap& operator=(const ScopedMmap&) = delete;
  ~ScopedMmap();

  bool ok() const { return data_ != nullptr; }
  void* get() const { return data_; }
  size_t size() const { return size_; }
  // Gives up ownership without unmapping (a fork child that must not touch it).
  void* release();

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace cppdiag
