// Async-signal-safe: nothing here allocates, locks or uses stdio (but
// ScopedMmap::Anonymous, which runs at start).
#include "common/async_safe.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "common/io.h"

namespace cppdiag {

pid_t CurrentTid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }
pid_t CurrentPid() { return static_cast<pid_t>(::syscall(SYS_getpid)); }

namespace {
uint64_t ClockNs(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace

uint64_t MonotonicNs() { return ClockNs(CLOCK_MONOTONIC); }
uint64_t RealtimeNs() { return ClockNs(CLOCK_REALTIME); }

int FutexWait(std::atomic<uint32_t>* word, uint32_t expected, int64_t timeout_ns) {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
  timespec ts{};
  if (timeout_ns >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1000000000);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1000000000);
  }
  int saved = errno;
  long r = ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT | FUTEX_PRIVATE_FLAG,
                     expected, timeout_ns >= 0 ? &ts : nullptr, nullptr, 0);
  int err = r == 0 ? 0 : errno;
  errno = saved;
  return err;
}

void FutexWake(std::atomic<uint32_t>* word, int count) {
  int saved = errno;
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE | FUTEX_PRIVATE_FLAG, count,
            nullptr, nullptr, 0);
  errno = saved;
}

size_t FormatDecimal(uint64_t value, char* out, size_t size) {
  char tmp[kMaxDecimalChars];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  if (n + 1 > size) return 0;
  for (size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  out[n] = '\0';
  return n;
}

size_t FormatDecimal(int64_t value, char* out, size_t size) {
  if (value >= 0) return FormatDecimal(static_cast<uint64_t>(value), out, size);
  if (size < 2) return 0;
  // -(value + 1) + 1: no overflow for INT64_MIN.
  uint64_t magnitude = static_cast<uint64_t>(-(value + 1)) + 1;
  size_t n = FormatDecimal(magnitude, out + 1, size - 1);
  if (n == 0) return 0;
  out[0] = '-';
  return n + 1;
}

size_t ParseDecimal(std::string_view text, uint64_t* out) {
  uint64_t v = 0;
  size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (v > (UINT64_MAX - digit) / 10) return 0;  // overflow
    v = v * 10 + digit;
  }
  if (i > 0) *out = v;
  return i;
}

size_t ParseHex(std::string_view text, uint64_t* out) {
  uint64_t v = 0;
  size_t i = 0;
  for (; i < text.size(); ++i) {
    char c = text[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) break;
    if (i == 16) return 0;  // more than 64 bits
    v = v << 4 | static_cast<uint64_t>(d);
  }
  if (i > 0) *out = v;
  return i;
}

ssize_t ReadSmallFile(const char* path, char* buf, size_t size) {
  if (size == 0) return -EINVAL;
  int fd = HANDLE_EINTR(::open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd < 0) return -errno;
  size_t len = 0;
  int err = 0;
  while (len + 1 < size) {
    ssize_t n = HANDLE_EINTR(::read(fd, buf + len, size - 1 - len));
    if (n < 0) err = errno;
    if (n <= 0) break;
    len += static_cast<size_t>(n);
  }
  ::close(fd);
  buf[len] = '\0';
  return err != 0 ? -err : static_cast<ssize_t>(len);
}

bool ReadDecimalFile(const char* path, uint64_t* out) {
  char buf[32];
  ssize_t n = ReadSmallFile(path, buf, sizeof buf);
  return n > 0 && ParseDecimal(std::string_view(buf, static_cast<size_t>(n)), out) > 0;
}

ScopedMmap ScopedMmap::Anonymous(size_t bytes, bool populate) {
  ScopedMmap m;
  if (bytes == 0) {
    errno = EINVAL;
    return m;
  }
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) return m;
  ::madvise(p, bytes, MADV_DONTDUMP);  // the runtime's buffers are no one's data
  m.data_ = p;
  m.size_ = bytes;
  return m;
}

ScopedMmap::ScopedMmap(ScopedMmap&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

ScopedMmap& ScopedMmap::operator=(ScopedMmap&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

ScopedMmap::~ScopedMmap() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

void* ScopedMmap::release() {
  size_ = 0;
  return std::exchange(data_, nullptr);
}

}  // namespace cppdiag
