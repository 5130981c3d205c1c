// The sampling profiler's core, free of the allocator hooks so that unit tests
// (and sanitizer builds, which compile the hooks out) exercise it directly.
//
// - ExponentialStride: byte strides between samples, exponentially
//   distributed with a given mean, carrying the rounding error from one draw
//   to the next as abseil's ExponentialBiased does (so small means stay
//   unbiased).
// - CaptureStack: a frame-pointer walk. Why frame pointers and not
//   libunwind: the walk runs inside malloc, and unw_backtrace may take
//   libunwind's locks, allocate on first use of a module (its DWARF caches)
//   and calls dl_iterate_phdr, which takes the loader lock (a dlopen in
//   another thread that allocates would deadlock against us). The FP walk
//   costs a few loads per frame. The project builds with
//   -fno-omit-frame-pointer; frames of libraries built without them (glibc,
//   libstdc++) leave garbage in the chain, so every frame is checked:
//   aligned, above the previous one, and in memory known to be readable
//   before it is loaded. What is readable is learned without calling glibc
//   (pthread_getattr_np takes the thread's lock, and for the main thread
//   reads /proc/self/maps with stdio: glibc allocates under those locks, so
//   from inside malloc it deadlocks) and without faulting:
//   * The thread's own stack. Its top needs no call: glibc puts a thread's
//     descriptor (pthread_self()) at the top of its stack block, and the
//     initial thread's stack ends at __libc_stack_end. Below the top, the
//     walk asks the kernel whether each page is readable (rt_sigprocmask
//     copies its argument from the address and fails with EFAULT instead of
//     faulting; ~0.5 us), page by page down to the deepest frame a sample has
//     started from, at most 64 pages a sample, each page once in the thread's
//     life, stopping for good at the first unreadable page (the guard page).
//     A sample that starts on that range, nearly every one, walks it with a
//     compare per frame and no syscall.
//   * Any other stack: a signal handler's alternate stack, a fiber's, or the
//     thread's own below what is known yet. Each page the chain enters is
//     probed before it is read, at most 16 a sample. The chain may go back
//     to the thread's stack once (a handler's interrupted frames) and is
//     bounded by it from there.
//   Not covered: memory unmapped by another thread between its probe and the
//   load (a fiber's stack freed while a sample walks it); and the thread's
//   range assumes what lies between its frames and its top stays mapped
//   while it lives, which holds for glibc's stacks (a guard page below each)
//   but not for a stack without one (pthread_attr_setstack, guard size 0)
//   whose neighbour below, once run on (a fiber), is unmapped later.
// - LiveTable: the sampled allocations still alive, and the deduplicated
//   stacks they came from, in fixed-capacity arrays mapped once with mmap
//   (no malloc). One spinlock guards mutation; a counter array indexed by a
//   hash of the pointer lets free() of an unsampled block leave after one
//   load and one test. Readers that may not lock (a dump's note provider in a
//   signal handler) read without the lock and tolerate a torn entry.
//
// Everything here except Collect is async-signal-safe and allocation-free.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cppdiag::heap {

class ExponentialStride {
 public:
  constexpr explicit ExponentialStride(uint64_t seed = 0) { Seed(seed); }
  constexpr void Seed(uint64_t seed) {
    rng_ = seed ^ 0x2545F4914F6CDD1Dull;
    if (rng_ == 0) rng_ = 1;
    bias_ = 0;
  }
  // Next stride in bytes (>= 1), with mean `mean` over many draws.
  int64_t Next(uint64_t mean);

 private:
  uint64_t rng_ = 1;
  double bias_ = 0;
};

// Writes up to `max` return addresses, innermost first, starting `skip`
// frames above the caller of CaptureStack. Returns how many were written.
// Reads only memory known readable (see above); makes no call but the
// kernel's.
size_t CaptureStack(uint64_t* pcs, size_t max, size_t skip);

// Unbiased weights of a sample of `size` bytes taken with mean stride
// `period`: it stands for Count objects and Count * size bytes.
double SampleWeight(uint64_t size, uint64_t period);

inline constexpr size_t kMaxFrames = 48;

struct StackRecord {
  std::atomic<uint64_t> hash{0};  // 0: free slot; published last
  uint32_t depth = 0;
  uint64_t pcs[kMaxFrames] = {};
  // Live sampled allocations from this stack (mutated under the table lock).
  uint64_t live_count = 0;
  uint64_t live_bytes = 0;
  double est_count = 0;
  double est_bytes = 0;
};

// A sampled allocation as it happened, for a trace's timeline (the newest
// kRecentCapacity kept; LiveTable::ReadRecent).
struct RecentSample {
  uint64_t time_ns = 0;  // CLOCK_MONOTONIC
  uint64_t size = 0;     // requested bytes
  float weight = 0;      // SampleWeight: objects it stands for
  uint32_t stack = 0;    // LiveTable::stack id
  int32_t tid = 0;
};
inline constexpr size_t kRecentCapacity = 2048;

struct LiveEntry {
  uintptr_t ptr = 0;  // 0: empty
  uint64_t size = 0;
  uint32_t stack = 0;
  float weight = 0;  // SampleWeight at insert, subtracted as is on remove
};

class LiveTable {
 public:
  // Capacities are rounded up to powers of two.
  LiveTable(size_t live_capacity, size_t stack_capacity);
  ~LiveTable();
  LiveTable(const LiveTable&) = delete;
  LiveTable& operator=(const LiveTable&) = delete;

  bool ok() const { return live_ != nullptr; }

  // Records a sampled allocation. False when the live table is full (the
  // sample is dropped) or `ptr` is already present. Every sample, kept or
  // not, also goes to the ring of recent samples with `time_ns` and `tid`.
  bool Insert(uintptr_t ptr, uint64_t size, const uint64_t* pcs, size_t depth, uint64_t period,
              uint64_t time_ns = 0, int32_t tid = 0);

  // Copies the recent samples numbered from *cursor on (at most `max`,
  // oldest first) and advances *cursor past them; those already overwritten
  // are skipped and added to *missed. Takes the lock: normal context, and
  // `out` allocated before the call. recent_next() is the number of the next
  // sample (a cursor that starts now).
  size_t ReadRecent(uint64_t* cursor, RecentSample* out, size_t max, uint64_t* missed);
  uint64_t recent_next() const { return recent_next_.load(std::memory_order_acquire); }

  // Removes `ptr` if sampled; returns its requested size, or -1.
  int64_t Remove(uintptr_t ptr);

  size_t live_count() const { return live_count_.load(std::memory_order_relaxed); }
  size_t stack_count() const { return stacks_used_.load(std::memory_order_acquire); }
  size_t live_capacity() const { return live_mask_ + 1; }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Counts a sample dropped before Insert (no memory for it).
  void NoteDropped() { dropped_.fetch_add(1, std::memory_order_relaxed); }

  // Stacks by id [0, stack_count()); read without the lock they may be torn.
  const StackRecord& stack(size_t id) const { return stacks_[id]; }

  // Lock for consistent reads in normal context (Collect), and for fork.
  void Lock();
  void Unlock();
  // After fork in the child: the lock may have been held by a thread that
  // no longer exists.
  void ResetLockAfterFork() { lock_.store(false, std::memory_order_relaxed); }

  // Drops every entry (tests).
  void Clear();

 private:
  size_t LiveSlot(uintptr_t p) const {
    return static_cast<size_t>(((p >> 4) * 0xC2B2AE3D27D4EB4Full) >> 17) & live_mask_;
  }
  uint32_t InternStack(const uint64_t* pcs, size_t depth);

  std::atomic<bool> lock_{false};
  LiveEntry* live_ = nullptr;
  size_t live_mask_ = 0;
  StackRecord* stacks_ = nullptr;
  size_t stack_capacity_ = 0;
  uint32_t* stack_index_ = nullptr;  // open addressing: stack id + 1, 0 empty
  size_t index_mask_ = 0;
  std::atomic<size_t> live_count_{0};
  std::atomic<size_t> stacks_used_{0};
  std::atomic<uint64_t> dropped_{0};
  RecentSample* recent_ = nullptr;  // kRecentCapacity, a ring numbered by recent_next_
  std::atomic<uint64_t> recent_next_{0};
  size_t mapped_bytes_ = 0;
  void* mapping_ = nullptr;
};

}  // namespace cppdiag::heap
