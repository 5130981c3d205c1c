// Async-signal-safe: the one lock that serialises dumps, taken by the crash
// handler, the pre-OOM watchdog, socket requests and reconfiguration alike.
// No allocation, no locks of libc, no stdio.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>

namespace cppdiag::dump::internal {

class DumpLock {
 public:
  // 0: held. EDEADLK: this thread holds it already (a crash inside a dump).
  // EBUSY: another thread holds it and `wait` is false. With `wait`, sleeps
  // on a futex until it is released.
  int Acquire(bool wait);
  void Release();
  // In a forked child: the thread that held it did not come along, and
  // neither did its dump.
  void ForgetOwner();

 private:
  std::atomic<pid_t> owner_{0};        // tid of the holder, 0 when free
  std::atomic<uint32_t> released_{0};  // futex word, bumped at each release
};

// The dump lock for a scope: released on every way out of it.
class ScopedDumpLock {
 public:
  ScopedDumpLock(DumpLock* lock, bool wait) : lock_(lock), err_(lock->Acquire(wait)) {}
  ~ScopedDumpLock() {
    if (err_ == 0) lock_->Release();
  }
  ScopedDumpLock(const ScopedDumpLock&) = delete;
  ScopedDumpLock& operator=(const ScopedDumpLock&) = delete;
  int error() const { return err_; }  // 0: held

 private:
  DumpLock* lock_;
  int err_;
};

}  // namespace cppdiag::dump::internal
