#include "leakapp/leak_engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace leakapp {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

double ToMb(uint64_t bytes) { return static_cast<double>(bytes) / kMiB; }

}  // namespace

const char* LeakStateName(LeakState state) {
  switch (state) {
    case LeakState::kIdle:
      return "idle";
    case LeakState::kRunning:
      return "running";
    case LeakState::kStopped:
      return "stopped";
  }
  return "unknown";
}

LeakEngine::~LeakEngine() {
  std::lock_guard control(control_mu_);
  StopLocked();
}

bool LeakEngine::Start(const LeakParams& params) {
  std::lock_guard control(control_mu_);
  {
    std::lock_guard lock(mu_);
    if (state_ == LeakState::kRunning) return false;
  }
  // A leak that ended by itself (at max_mb) still has a thread to reap.
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mu_);
    state_ = LeakState::kRunning;
    params_ = params;
    stop_requested_ = false;
  }
  rounds_ = 0;
  spdlog::info("Leak started: pattern={} chunkKb={} intervalMs={} maxMb={}",
               LeakPatternName(params.pattern), params.chunk_kb, params.interval_ms, params.max_mb);
  thread_ = std::thread(&LeakEngine::Run, this, params);
  return true;
}

bool LeakEngine::Stop() {
  std::lock_guard control(control_mu_);
  return StopLocked();
}

bool LeakEngine::StopLocked() {
  bool was_running = false;
  {
    std::lock_guard lock(mu_);
    was_running = state_ == LeakState::kRunning;
    stop_requested_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (was_running) {
    std::lock_guard lock(mu_);
    state_ = LeakState::kStopped;
    spdlog::info("Leak stopped after {} rounds, Total: {:.2f} MB", rounds_.load(),
                 ToMb(leaked_bytes_));
  }
  return was_running;
}

uint64_t LeakEngine::Release() {
  std::lock_guard control(control_mu_);
  StopLocked();
  uint64_t freed = leaked_bytes_.exchange(0);
  memory_.ReleaseAll();
  {
    std::lock_guard lock(mu_);
    state_ = LeakState::kIdle;
  }
  spdlog::info("Released {:.2f} MB and returned free memory to the OS", ToMb(freed));
  return freed;
}

LeakSnapshot LeakEngine::Snapshot() const {
  LeakSnapshot s;
  {
    std::lock_guard lock(mu_);
    s.state = state_;
    s.params = params_;
  }
  s.rounds = rounds_;
  s.rounds_total = rounds_total_;
  s.leaked_bytes = leaked_bytes_;
  return s;
}

void LeakEngine::Run(LeakParams params) {
  const uint64_t chunk = params.chunk_kb * 1024;
  const uint64_t cap = params.max_mb * 1024 * 1024;  // 0 = none
  auto at_cap = [&] {
    if (cap == 0 || leaked_bytes_ < cap) return false;
    spdlog::info("Reached maxMb={} (Total: {:.2f} MB); leak stopped", params.max_mb,
                 ToMb(leaked_bytes_));
    return true;
  };
  for (;;) {
    if (at_cap()) break;
    uint64_t bytes = cap == 0 ? chunk : std::min(chunk, cap - leaked_bytes_);
    // Out of memory does not return from here: the pattern logs and rethrows,
    // and the uncaught exception ends the process (see leak_patterns.h).
    memory_.Leak(params.pattern, bytes);
    uint64_t total = leaked_bytes_ += bytes;
    ++rounds_;
    ++rounds_total_;
    spdlog::info("Allocated {:.2f} MB this round, Total: {:.2f} MB", ToMb(bytes), ToMb(total));
    if (at_cap()) break;
    std::unique_lock lock(mu_);
    if (wake_.wait_for(lock, std::chrono::milliseconds(params.interval_ms),
                       [&] { return stop_requested_; })) {
      return;  // StopLocked() sets the state
    }
  }
  std::lock_guard lock(mu_);
  state_ = LeakState::kStopped;
}

}  // namespace leakapp
