// One target's firing (its dump, then its --action command) run on a thread
// of its own, so that a slow dump of one target of `cppdiag monitor -w NAME`
// or `--pgid` delays no other target's trigger. The monitor runs at most one
// firing per target at a time (it starts one only when busy() is false) and
// a bounded number at once, and joins every worker before it exits.
//
//   DumpWorker worker;
//   if (!worker.busy()) worker.Start([&] { WriteDump(...); });
//   ...
//   worker.Join();
//
// Not async-signal-safe; for the cppdiag tool.
#pragma once

#include <atomic>
#include <functional>
#include <thread>

namespace cppdiag::cli::monitor {

class DumpWorker {
 public:
  DumpWorker() = default;
  ~DumpWorker() { Join(); }
  DumpWorker(const DumpWorker&) = delete;
  DumpWorker& operator=(const DumpWorker&) = delete;

  // Whether a firing is running. Once false, whatever the work wrote is
  // visible to the caller (release/acquire).
  bool busy() const { return busy_.load(std::memory_order_acquire); }

  // Runs `work` on a new thread; called only when !busy(). Where no thread
  // can be started, runs it here (late, but not lost). `then` runs once
  // busy() is false (the loop's wake-up: woken before, it could see the
  // firing still running and sleep a whole poll).
  void Start(const std::function<void()>& work, const std::function<void()>& then = {});

  // Waits for the running firing, if any.
  void Join();

 private:
  std::thread thread_;
  std::atomic<bool> busy_{false};
};

}  // namespace cppdiag::cli::monitor
