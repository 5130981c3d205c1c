// The leak thread and its state: /triggerMemoryLeak starts it, /stopMemoryLeak
// stops it (keeping what leaked), /releaseMemory frees everything.
//
// One leak runs at a time: Start() while one runs is refused (the HTTP layer
// answers 409), so parameters never change under a running leak.
//
// Each round leaks one chunk with the chosen pattern and logs
//   Allocated 1.00 MB this round, Total: 37.00 MB
// where Total is everything the process holds leaked (across runs and
// patterns, until a release). With max_mb set, the leak stops when Total
// reaches max_mb, the last chunk cut to land on it exactly.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "leakapp/leak_patterns.h"

namespace leakapp {

struct LeakParams {
  LeakPattern pattern = LeakPattern::kVector;
  uint64_t chunk_kb = 1024;
  uint64_t interval_ms = 100;
  uint64_t max_mb = 0;  // 0 = no cap
};

enum class LeakState {
  kIdle,     // nothing leaked (at start, and after a release)
  kRunning,  // the leak thread runs
  kStopped,  // the leak thread ended (stopped, or reached max_mb); what leaked is kept
};
// "idle", "running", "stopped".
const char* LeakStateName(LeakState state);

struct LeakSnapshot {
  LeakState state = LeakState::kIdle;
  LeakParams params;          // of the running or last run
  uint64_t rounds = 0;        // of the running or last run
  uint64_t rounds_total = 0;  // since the process started
  uint64_t leaked_bytes = 0;  // held now
};

class LeakEngine {
 public:
  LeakEngine() = default;
  ~LeakEngine();  // stops the thread (what leaked is freed with the process)
  LeakEngine(const LeakEngine&) = delete;
  LeakEngine& operator=(const LeakEngine&) = delete;

  // Starts the leak thread. Returns false, changing nothing, if one runs.
  bool Start(const LeakParams& params);

  // Stops the leak thread and waits for it; what leaked stays. Returns true if
  // a leak was running.
  bool Stop();

  // Stops a running leak, frees everything leaked and gives free memory back
  // to the OS. Returns the bytes freed.
  uint64_t Release();

  // May be called from any thread at any time.
  LeakSnapshot Snapshot() const;

 private:
  void Run(LeakParams params);
  // With control_mu_ held.
  bool StopLocked();

  std::mutex control_mu_;  // serialises Start/Stop/Release (which join the thread)
  mutable std::mutex mu_;  // guards the fields below it
  std::condition_variable wake_;
  LeakState state_ = LeakState::kIdle;
  LeakParams params_;
  bool stop_requested_ = false;

  std::thread thread_;
  std::atomic<uint64_t> rounds_{0};
  std::atomic<uint64_t> rounds_total_{0};
  std::atomic<uint64_t> leaked_bytes_{0};
  // Touched by the leak thread while it runs, by Release once it has ended.
  LeakedMemory memory_;
};

}  // namespace leakapp
