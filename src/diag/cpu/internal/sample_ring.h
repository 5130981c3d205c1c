// The per-thread buffers the CPU sampler's signal handler writes into and
// its drain reads from. Async-signal-safe and lock-free: one producer (the
// thread the slot belongs to, in its SIGPROF handler) and one consumer (the
// thread that drains), nothing allocated after the slots are mapped.
//
// A slot belongs to at most one thread at a time: `tid`, set by the consumer
// before the thread's timer is armed and cleared after it is deleted. The
// handler writes only when `tid` is its own thread's, so a signal still
// queued from an earlier timer never gives a slot two producers.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cppdiag::cpu::internal {

inline constexpr size_t kMaxFrames = 64;
inline constexpr size_t kRingCapacity = 128;  // a power of two

struct RawSample {
  uint64_t time_ns = 0;  // CLOCK_MONOTONIC
  uint32_t weight = 0;   // timer periods it stands for (1 + the timer's overrun)
  uint32_t depth = 0;
  uint64_t pcs[kMaxFrames] = {};  // pcs[0]: the interrupted pc; then return addresses
};

class SampleRing {
 public:
  // Producer. The entry to fill, or null when the ring is full (the sample
  // is counted as lost). Publish it with Commit().
  RawSample* Reserve() {
    uint64_t h = head_.load(std::memory_order_relaxed);
    if (h - tail_.load(std::memory_order_acquire) >= kRingCapacity) {
      lost_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    return &entries_[h & (kRingCapacity - 1)];
  }
  void Commit() {
    head_.store(head_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

  // Consumer. Calls fn(const RawSample&) for each published entry, oldest
  // first, then frees them; returns how many.
  template <typename Fn>
  size_t Drain(Fn&& fn) {
    uint64_t t = tail_.load(std::memory_order_relaxed);
    uint64_t h = head_.load(std::memory_order_acquire);
    for (uint64_t i = t; i != h; ++i) fn(entries_[i & (kRingCapacity - 1)]);
    tail_.store(h, std::memory_order_release);
    return static_cast<size_t>(h - t);
  }
  // Consumer, while no producer may write (the slot has no thread): drops
  // whatever an earlier owner left.
  void Discard() { tail_.store(head_.load(std::memory_order_acquire), std::memory_order_release); }

  // Samples lost to a full ring since the last TakeLost().
  uint64_t TakeLost() { return lost_.exchange(0, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> head_{0};
  std::atomic<uint64_t> tail_{0};
  std::atomic<uint64_t> lost_{0};
  RawSample entries_[kRingCapacity];
};

struct ThreadSlot {
  std::atomic<pid_t> tid{0};  // the thread that may write; 0: none
  SampleRing ring;
};

}  // namespace cppdiag::cpu::internal
