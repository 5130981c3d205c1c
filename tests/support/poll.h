// Waiting on a condition a test cannot be told about (a file appearing in
// /proc, a counter in another process): check it, then check again every
// 10 ms, until it holds or the timeout passes. Prefer a pipe, a pidfd or
// inotify when the event can be signalled; this is for what cannot.
#pragma once

#include <chrono>
#include <thread>

namespace cppdiag::testing {

// Calls `pred` until it returns true or `timeout` has passed (it is always
// called at least once, and once more after the deadline); returns whether
// it held.
template <typename Pred>
bool PollUntil(Pred pred, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = std::chrono::milliseconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace cppdiag::testing
