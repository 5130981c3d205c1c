// ScopedFd: the one owner of a file descriptor (after crashpad's ScopedFD).
// Move-only, closes on destruction, no implicit conversion to int.
//
// Its destructor and reset() only call close(2), so a ScopedFd may live in
// async-signal-safe code.
#pragma once

#include <unistd.h>

#include <utility>

namespace cppdiag {

class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~ScopedFd() { reset(); }

  int get() const { return fd_; }
  bool is_valid() const { return fd_ >= 0; }
  // Gives up ownership without closing.
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);  // close is not retried on EINTR: the fd is gone on Linux.
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace cppdiag
