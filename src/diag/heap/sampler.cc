// Allocation-free: runs inside malloc.
#include "diag/heap/sampler.h"

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

extern "C" void* __libc_stack_end;  // glibc: the main thread's initial stack pointer

namespace cppdiag::heap {
namespace {

size_t RoundUpPow2(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

size_t PageRound(size_t n) { return (n + 4095) & ~size_t{4095}; }

uint64_t HashPcs(const uint64_t* pcs, size_t depth) {
  uint64_t h = 0xcbf29ce484222325ull ^ depth;
  for (size_t i = 0; i < depth; ++i) {
    h ^= pcs[i];
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  }
  return h | 1;  // never 0 (0 marks a free slot)
}

// ---- what the stack walk may read ----

constexpr uintptr_t kPage = 4096;
constexpr int kExtendProbes = 64;  // pages of the thread's stack learned a sample, at most
constexpr int kWalkProbes = 16;    // pages probed by a walk off the thread's stack, at most

uintptr_t PageOf(uintptr_t p) { return p & ~(kPage - 1); }

// True when the 8 bytes at `addr` can be read, asked of the kernel rather
// than by a load that could fault: rt_sigprocmask copies its new set from
// `addr` (EFAULT if it cannot) before it rejects the invalid `how` (EINVAL).
// No lock, no allocation; errno is kept.
bool Readable(uintptr_t addr) {
  if (addr < kPage) return false;  // a null set would mean "no set" to the kernel
  int saved = errno;
  long r = syscall(SYS_rt_sigprocmask, ~0, addr, nullptr, sizeof(uint64_t));
  bool fault = r == -1 && errno == EFAULT;
  errno = saved;
  return !fault;
}

// The initial thread, noted when the library loads (0 if it was loaded by
// another thread: a thread then asks the kernel whether it is the initial
// one).
pthread_t g_initial_thread = 0;
__attribute__((constructor)) void NoteInitialThread() {
  if (gettid() == getpid()) g_initial_thread = pthread_self();
}

// [lo, hi) of the calling thread's stack is known readable. hi == 0: not
// looked at yet. floor: the highest page below lo found unreadable (0: none
// yet); the range never grows down to it.
struct ThreadStack {
  uintptr_t hi = 0;
  uintptr_t lo = 0;
  uintptr_t floor = 0;
};
__attribute__((tls_model("initial-exec"))) thread_local ThreadStack t_stack;

void LearnStackTop(ThreadStack& ts) {
  pthread_t self = pthread_self();
  bool initial =
      g_initial_thread != 0 ? pthread_equal(self, g_initial_thread) != 0 : gettid() == getpid();
  // glibc puts a thread's descriptor at the top of its stack block (also of
  // a stack the program supplied); the initial thread's is elsewhere.
  ts.hi = initial ? reinterpret_cast<uintptr_t>(__libc_stack_end) : static_cast<uintptr_t>(self);
  ts.lo = PageOf(ts.hi + kPage - 1);  // nothing known yet
}

// True when [p, p + 16) lies in the calling thread's stack range, probing the
// pages between the range and p first while `*budget` (this sample's) lasts;
// the rest is left for later samples.
bool OnThreadStack(ThreadStack& ts, uintptr_t p, int* budget) {
  if (ts.hi == 0) LearnStackTop(ts);
  if (p > ts.hi - 16) return false;
  if (p >= ts.lo) return true;
  uintptr_t want = PageOf(p);
  if (want <= ts.floor) return false;
  while (ts.lo > want) {
    if ((*budget)-- <= 0) return false;
    uintptr_t page = ts.lo - kPage;
    if (!Readable(page)) {
      ts.floor = page;
      return false;
    }
    ts.lo = page;
  }
  return true;
}

// Off the thread's stack: the pages this walk has probed end at `hi` (the
// chain only climbs, so what lies below the current frame no longer matters).
// Makes [p, p + 16) covered if its pages are readable and the budget allows;
// pages a jump skips are neither probed nor read.
struct ProbedWindow {
  uintptr_t hi;
  int budget = kWalkProbes;

  bool Cover(uintptr_t p) {
    for (uintptr_t page = PageOf(p); page <= PageOf(p + 15); page += kPage) {
      if (page < hi) continue;
      if (budget-- <= 0 || !Readable(page)) return false;
      hi = page + kPage;
    }
    return true;
  }
};

}  // namespace

int64_t ExponentialStride::Next(uint64_t mean) {
  // xorshift64*: 53 random bits give u in (0, 1].
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  uint64_t r = (rng_ * 0x2545F4914F6CDD1Dull) >> 11;
  double u = (static_cast<double>(r) + 1.0) / 9007199254740992.0;
  // As abseil's GetStride: a skip count of mean - 1, plus one. Strides are
  // integers; the fraction floor() cuts off is carried into the next draw.
  double skip_mean = mean > 0 ? static_cast<double>(mean - 1) : 0.0;
  double interval = -std::log(u) * skip_mean + bias_;
  double value = std::floor(interval);
  bias_ = interval - value;
  if (value > 9.0e18) value = 9.0e18;
  return static_cast<int64_t>(value) + 1;
}

double SampleWeight(uint64_t size, uint64_t period) {
  if (period == 0 || size == 0) return 1.0;
  double p = 1.0 - std::exp(-static_cast<double>(size) / static_cast<double>(period));
  return p <= 0 ? 1.0 : 1.0 / p;
}

// May read garbage a frame chain leads to (readable, but maybe poisoned or
// another thread's): not instrumented.
__attribute__((noinline, no_sanitize("address", "thread"))) size_t CaptureStack(uint64_t* pcs,
                                                                                size_t max,
                                                                                size_t skip) {
  uintptr_t fp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  ThreadStack& ts = t_stack;
  int extend_budget = kExtendProbes;
  bool on_stack = OnThreadStack(ts, fp, &extend_budget);
  // This frame's own page is readable: it holds the frame.
  ProbedWindow window{PageOf(fp) + kPage};
  size_t n = 0;
  // Each frame: fp[0] = caller's fp, fp[1] = return address. [fp, fp + 16)
  // is known readable at the top of the loop.
  while (n < max) {
    const uintptr_t* frame = reinterpret_cast<const uintptr_t*>(fp);
    uintptr_t next = frame[0];
    uintptr_t ret = frame[1];
    if (ret < 4096) break;
    if (skip > 0) {
      --skip;
    } else {
      pcs[n++] = ret;
    }
    if ((next & 7) != 0) break;
    if (on_stack) {
      // Frames grow toward higher addresses, up to the stack's top.
      if (next <= fp || next > ts.hi - 16) break;
    } else if (OnThreadStack(ts, next, &extend_budget)) {
      on_stack = true;  // back on the thread's stack: bounded by it from here
    } else if (next <= fp || !window.Cover(next)) {
      break;
    }
    fp = next;
  }
  return n;
}

LiveTable::LiveTable(size_t live_capacity, size_t stack_capacity) {
  size_t live_n = RoundUpPow2(live_capacity < 16 ? 16 : live_capacity);
  size_t stack_n = RoundUpPow2(stack_capacity < 16 ? 16 : stack_capacity);
  size_t index_n = stack_n * 2;
  size_t live_bytes = PageRound(live_n * sizeof(LiveEntry));
  size_t stack_bytes = PageRound(stack_n * sizeof(StackRecord));
  size_t index_bytes = PageRound(index_n * sizeof(uint32_t));
  size_t recent_bytes = PageRound(kRecentCapacity * sizeof(RecentSample));
  mapped_bytes_ = live_bytes + stack_bytes + index_bytes + recent_bytes;
  // MAP_NORESERVE: only the pages the table touches count.
  void* m = mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return;
  mapping_ = m;
  char* base = static_cast<char*>(m);
  live_ = reinterpret_cast<LiveEntry*>(base);  // zero pages are valid empty entries
  live_mask_ = live_n - 1;
  stacks_ = reinterpret_cast<StackRecord*>(base + live_bytes);
  stack_capacity_ = stack_n;
  stack_index_ = reinterpret_cast<uint32_t*>(base + live_bytes + stack_bytes);
  index_mask_ = index_n - 1;
  recent_ = reinterpret_cast<RecentSample*>(base + live_bytes + stack_bytes + index_bytes);
  // Stack 0: where samples go when the stack table is full (depth 0).
  stacks_[0].hash.store(1, std::memory_order_release);
  stacks_used_.store(1, std::memory_order_release);
}

LiveTable::~LiveTable() {
  if (mapping_ != nullptr) munmap(mapping_, mapped_bytes_);
}

void LiveTable::Lock() {
  // Spin briefly, then yield: with more threads than CPUs the holder may be
  // preempted, and spinning out a whole time slice costs far more than the
  // syscall (which neither allocates nor locks).
  int spins = 0;
  while (lock_.exchange(true, std::memory_order_acquire)) {
    while (lock_.load(std::memory_order_relaxed)) {
      if (++spins < 100) {
        __builtin_ia32_pause();
      } else {
        sched_yield();
        spins = 0;
      }
    }
  }
}

void LiveTable::Unlock() { lock_.store(false, std::memory_order_release); }

uint32_t LiveTable::InternStack(const uint64_t* pcs, size_t depth) {
  uint64_t h = HashPcs(pcs, depth);
  for (size_t i = h & index_mask_, probes = 0; probes <= index_mask_;
       i = (i + 1) & index_mask_, ++probes) {
    uint32_t slot = stack_index_[i];
    if (slot == 0) {
      size_t id = stacks_used_.load(std::memory_order_relaxed);
      if (id >= stack_capacity_) return 0;
      StackRecord& s = stacks_[id];
      s.depth = static_cast<uint32_t>(depth);
      std::memcpy(s.pcs, pcs, depth * sizeof(uint64_t));
      s.hash.store(h, std::memory_order_release);
      stack_index_[i] = static_cast<uint32_t>(id + 1);
      stacks_used_.store(id + 1, std::memory_order_release);
      return static_cast<uint32_t>(id);
    }
    const StackRecord& s = stacks_[slot - 1];
    if (s.hash.load(std::memory_order_relaxed) == h && s.depth == depth &&
        std::memcmp(s.pcs, pcs, depth * sizeof(uint64_t)) == 0) {
      return slot - 1;
    }
  }
  return 0;
}

bool LiveTable::Insert(uintptr_t ptr, uint64_t size, const uint64_t* pcs, size_t depth,
                       uint64_t period, uint64_t time_ns, int32_t tid) {
  if (live_ == nullptr || ptr == 0) return false;
  if (depth > kMaxFrames) depth = kMaxFrames;
  double w = static_cast<float>(SampleWeight(size, period));
  Lock();
  uint32_t stack = InternStack(pcs, depth);
  uint64_t seq = recent_next_.load(std::memory_order_relaxed);
  recent_[seq % kRecentCapacity] = {time_ns, size, static_cast<float>(w), stack, tid};
  recent_next_.store(seq + 1, std::memory_order_release);
  // Keep the load factor under 3/4 so probes stay short.
  if (live_count_.load(std::memory_order_relaxed) >= (live_mask_ + 1) / 4 * 3) {
    Unlock();
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  size_t i = LiveSlot(ptr);
  while (live_[i].ptr != 0) {
    if (live_[i].ptr == ptr) {
      Unlock();
      return false;
    }
    i = (i + 1) & live_mask_;
  }
  live_[i].size = size;
  live_[i].stack = stack;
  live_[i].weight = static_cast<float>(w);
  live_[i].ptr = ptr;
  StackRecord& s = stacks_[stack];
  s.live_count += 1;
  s.live_bytes += size;
  s.est_count += w;
  s.est_bytes += w * static_cast<double>(size);
  live_count_.fetch_add(1, std::memory_order_relaxed);
  Unlock();
  return true;
}

int64_t LiveTable::Remove(uintptr_t ptr) {
  if (live_ == nullptr || ptr == 0) return -1;
  Lock();
  size_t i = LiveSlot(ptr);
  while (live_[i].ptr != 0 && live_[i].ptr != ptr) i = (i + 1) & live_mask_;
  if (live_[i].ptr == 0) {
    Unlock();
    return -1;
  }
  LiveEntry e = live_[i];
  StackRecord& s = stacks_[e.stack];
  s.live_count -= 1;
  s.live_bytes -= e.size;
  if (s.live_count == 0) {
    s.est_count = 0;
    s.est_bytes = 0;
  } else {
    double w = e.weight;
    s.est_count -= w;
    s.est_bytes -= w * static_cast<double>(e.size);
  }
  // Backward-shift deletion: no tombstones.
  size_t hole = i;
  for (size_t j = (i + 1) & live_mask_; live_[j].ptr != 0; j = (j + 1) & live_mask_) {
    size_t home = LiveSlot(live_[j].ptr);
    bool movable = (hole <= j) ? (home <= hole || home > j) : (home <= hole && home > j);
    if (movable) {
      live_[hole] = live_[j];
      hole = j;
    }
  }
  live_[hole] = LiveEntry{};
  live_count_.fetch_sub(1, std::memory_order_relaxed);
  Unlock();
  return static_cast<int64_t>(e.size);
}

size_t LiveTable::ReadRecent(uint64_t* cursor, RecentSample* out, size_t max, uint64_t* missed) {
  if (live_ == nullptr) return 0;
  Lock();
  uint64_t next = recent_next_.load(std::memory_order_relaxed);
  uint64_t from = *cursor;
  if (from > next) from = next;  // a cursor from another table (tests)
  if (next - from > kRecentCapacity) {
    *missed += next - from - kRecentCapacity;
    from = next - kRecentCapacity;
  }
  size_t n = 0;
  for (; from < next && n < max; ++from) out[n++] = recent_[from % kRecentCapacity];
  Unlock();
  *cursor = from;
  return n;
}

void LiveTable::Clear() {
  if (live_ == nullptr) return;
  Lock();
  for (size_t i = 0; i <= live_mask_; ++i) live_[i] = LiveEntry{};
  size_t n = stacks_used_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i) {
    stacks_[i].live_count = stacks_[i].live_bytes = 0;
    stacks_[i].est_count = stacks_[i].est_bytes = 0;
  }
  live_count_.store(0, std::memory_order_relaxed);
  Unlock();
}

}  // namespace cppdiag::heap
