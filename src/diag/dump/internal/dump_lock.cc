// Async-signal-safe (see dump_lock.h).
#include "diag/dump/internal/dump_lock.h"

#include <cerrno>
#include <climits>

#include "common/async_safe.h"

namespace cppdiag::dump::internal {

int DumpLock::Acquire(bool wait) {
  pid_t me = CurrentTid();
  for (;;) {
    uint32_t seen = released_.load(std::memory_order_acquire);
    pid_t expected = 0;
    if (owner_.compare_exchange_strong(expected, me, std::memory_order_acq_rel)) return 0;
    if (expected == me) return EDEADLK;
    if (!wait) return EBUSY;
    // Bounded, so a holder that vanished without releasing (it cannot, but
    // a lost wake-up would cost a tenth of a second, not the process).
    FutexWait(&released_, seen, 100'000'000);
  }
}

void DumpLock::Release() {
  owner_.store(0, std::memory_order_release);
  released_.fetch_add(1, std::memory_order_acq_rel);
  FutexWake(&released_, INT_MAX);
}

void DumpLock::ForgetOwner() {
  owner_.store(0, std::memory_order_release);
  released_.fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace cppdiag::dump::internal
