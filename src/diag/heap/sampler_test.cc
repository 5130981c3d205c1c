// The sampler's parts, without the hooks: these run in sanitizer builds too.
#include "diag/heap/sampler.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "diag/heap/stack_walk_test_util.h"

namespace cppdiag::heap {
namespace {

TEST(ExponentialStride, MeanWithinTwoPercent) {
  for (uint64_t mean : {uint64_t{64}, uint64_t{4096}, uint64_t{512 * 1024}}) {
    ExponentialStride s(42);
    double sum = 0;
    constexpr int kDraws = 400000;
    for (int i = 0; i < kDraws; ++i) {
      int64_t v = s.Next(mean);
      ASSERT_GE(v, 1);
      sum += static_cast<double>(v);
    }
    EXPECT_NEAR(sum / kDraws, static_cast<double>(mean), 0.02 * static_cast<double>(mean))
        << "mean " << mean;
  }
}

TEST(ExponentialStride, CarriesTheRoundingForSmallMeans) {
  // Without the carried fraction, floor() would bias a mean of 2.5 far down.
  ExponentialStride s(7);
  double sum = 0;
  constexpr int kDraws = 1000000;
  for (int i = 0; i < kDraws; ++i) sum += static_cast<double>(s.Next(3));
  EXPECT_NEAR(sum / kDraws, 3.0, 0.06);
}

TEST(ExponentialStride, ShapeIsExponential) {
  ExponentialStride s(99);
  constexpr int kDraws = 200000;
  int below_mean = 0;
  for (int i = 0; i < kDraws; ++i) below_mean += s.Next(10000) < 10000;
  EXPECT_NEAR(static_cast<double>(below_mean) / kDraws, 1 - std::exp(-1.0), 0.01);
}

TEST(LiveTable, InsertAndRemove) {
  LiveTable t(1024, 64);
  ASSERT_TRUE(t.ok());
  uint64_t pcs[3] = {0x1000, 0x2000, 0x3000};
  EXPECT_EQ(t.Remove(0x7f0000001000), -1) << "not inserted yet";
  EXPECT_TRUE(t.Insert(0x7f0000001000, 100, pcs, 3, 4096));
  EXPECT_FALSE(t.Insert(0x7f0000001000, 100, pcs, 3, 4096)) << "duplicate";
  EXPECT_EQ(t.live_count(), 1u);
  EXPECT_EQ(t.Remove(0x7f0000002000), -1);
  EXPECT_EQ(t.Remove(0x7f0000001000), 100);
  EXPECT_EQ(t.Remove(0x7f0000001000), -1) << "removed once";
  EXPECT_EQ(t.live_count(), 0u);
  EXPECT_EQ(t.stack(1).live_count, 0u);
  EXPECT_EQ(t.stack(1).est_bytes, 0.0);
}

TEST(LiveTable, RecentSamplesInOrderThenOverwritten) {
  LiveTable t(1 << 14, 64);
  ASSERT_TRUE(t.ok());
  uint64_t a[2] = {0x1000, 0x2000};
  uint64_t b[2] = {0x3000, 0x4000};
  uint64_t cursor = t.recent_next();
  ASSERT_TRUE(t.Insert(0x10000, 100, a, 2, 4096, 111, 7));
  ASSERT_TRUE(t.Insert(0x20000, 5000, b, 2, 4096, 222, 8));
  std::vector<RecentSample> out(kRecentCapacity);
  uint64_t missed = 0;
  ASSERT_EQ(t.ReadRecent(&cursor, out.data(), out.size(), &missed), 2u);
  EXPECT_EQ(missed, 0u);
  EXPECT_EQ(out[0].time_ns, 111u);
  EXPECT_EQ(out[0].tid, 7);
  EXPECT_EQ(out[0].size, 100u);
  EXPECT_NEAR(out[0].weight, SampleWeight(100, 4096), 1e-3);
  EXPECT_EQ(t.stack(out[0].stack).pcs[1], 0x2000u);
  EXPECT_EQ(t.stack(out[1].stack).pcs[0], 0x3000u);
  EXPECT_EQ(t.ReadRecent(&cursor, out.data(), out.size(), &missed), 0u) << "cursor advanced";
  // A reader that falls behind the ring loses the oldest and is told how many.
  for (uintptr_t i = 0; i < kRecentCapacity + 10; ++i) {
    t.Insert(0x100000 + i * 64, 8, a, 2, 4096, 1000 + i, 9);
  }
  EXPECT_EQ(t.ReadRecent(&cursor, out.data(), out.size(), &missed), kRecentCapacity);
  EXPECT_EQ(missed, 10u);
  EXPECT_EQ(out[0].time_ns, 1010u);
  EXPECT_EQ(out[kRecentCapacity - 1].time_ns, 1000u + kRecentCapacity + 9);
}

TEST(LiveTable, DeduplicatesStacks) {
  LiveTable t(1024, 64);
  uint64_t a[2] = {1, 2}, b[2] = {1, 3};
  for (uintptr_t p = 0x10000; p < 0x10000 + 16 * 10; p += 16) t.Insert(p, 8, a, 2, 4096);
  for (uintptr_t p = 0x20000; p < 0x20000 + 16 * 5; p += 16) t.Insert(p, 8, b, 2, 4096);
  EXPECT_EQ(t.stack_count(), 3u);  // stack 0 is the overflow stack
  EXPECT_EQ(t.stack(1).live_count, 10u);
  EXPECT_EQ(t.stack(2).live_count, 5u);
}

TEST(LiveTable, CapacityDropsSamplesInsteadOfGrowing) {
  LiveTable t(64, 16);
  uint64_t pcs[1] = {1};
  size_t inserted = 0;
  for (uintptr_t i = 1; i <= 200; ++i) inserted += t.Insert(i * 64, 8, pcs, 1, 4096);
  EXPECT_EQ(inserted, 48u);  // 3/4 of 64
  EXPECT_EQ(t.dropped(), 200u - 48u);
  for (uintptr_t i = 1; i <= 200; ++i) t.Remove(i * 64);
  EXPECT_EQ(t.live_count(), 0u);
}

TEST(LiveTable, FullStackTableUsesTheOverflowStack) {
  LiveTable t(1024, 16);
  for (uint64_t i = 1; i <= 40; ++i) t.Insert(i * 16, 8, &i, 1, 4096);
  EXPECT_EQ(t.stack_count(), 16u);
  EXPECT_GT(t.stack(0).live_count, 0u);
}

TEST(LiveTable, RandomInsertRemoveMatchesAModel) {
  LiveTable t(4096, 64);
  std::mt19937_64 rng(5);
  std::vector<uintptr_t> live;
  uint64_t pcs[1] = {7};
  for (int step = 0; step < 200000; ++step) {
    if (live.size() < 2500 && (live.empty() || rng() % 2)) {
      uintptr_t p = (rng() % (1 << 20)) * 16 + 16;
      if (t.Insert(p, 16, pcs, 1, 4096)) live.push_back(p);
    } else {
      size_t i = rng() % live.size();
      ASSERT_EQ(t.Remove(live[i]), 16) << step;
      live[i] = live.back();
      live.pop_back();
    }
  }
  EXPECT_EQ(t.live_count(), live.size());
  for (uintptr_t p : live) EXPECT_EQ(t.Remove(p), 16);
  EXPECT_EQ(t.live_count(), 0u);
}

// Simulates sampling an allocation pattern of known size and checks the
// table's unbiased estimate against the truth.
TEST(Estimates, LiveBytesWithinTenPercentOfTruth) {
  for (uint64_t period : {uint64_t{4096}, uint64_t{64 * 1024}, uint64_t{512 * 1024}}) {
    LiveTable t(size_t{1} << 16, 64);
    ExponentialStride s(period);
    int64_t countdown = s.Next(period);
    uint64_t pcs[1] = {1};
    uint64_t truth = 0;
    std::mt19937_64 rng(period);
    const size_t sizes[] = {24, 100, 1000, 4096, 70000};
    uintptr_t next = 0x10000000;
    // 512 MiB of live blocks of mixed sizes.
    while (truth < (512u << 20)) {
      size_t size = sizes[rng() % 5];
      uintptr_t p = next;
      next += (size + 15) & ~size_t{15};
      truth += size;
      countdown -= static_cast<int64_t>(size);
      if (countdown <= 0) {
        t.Insert(p, size, pcs, 1, period);
        countdown = s.Next(period);
      }
    }
    double est = t.stack(1).est_bytes;
    EXPECT_NEAR(est, static_cast<double>(truth), 0.10 * static_cast<double>(truth))
        << "period " << period;
  }
}

__attribute__((noinline)) size_t Leaf(uint64_t* pcs, uintptr_t* ra_into_middle) {
  *ra_into_middle = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  size_t n = CaptureStack(pcs, kMaxFrames, 0);
  asm volatile("" ::: "memory");  // keep the call above from becoming a tail call
  return n;
}
__attribute__((noinline)) size_t Middle(uint64_t* pcs, uintptr_t* a, uintptr_t* b) {
  *b = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  size_t n = Leaf(pcs, a);
  asm volatile("" ::: "memory");
  return n;
}
__attribute__((noinline)) size_t Outer(uint64_t* pcs, uintptr_t* a, uintptr_t* b, uintptr_t* c) {
  *c = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  size_t n = Middle(pcs, a, b);
  asm volatile("" ::: "memory");
  return n;
}

TEST(CaptureStack, WalksAChainOfNoinlineFunctions) {
  uint64_t pcs[kMaxFrames];
  uintptr_t into_middle = 0, into_outer = 0, into_test = 0;
  size_t n = Outer(pcs, &into_middle, &into_outer, &into_test);
  ASSERT_GE(n, 4u);
  // pcs[0] is the return into Leaf from CaptureStack.
  EXPECT_EQ(pcs[1], into_middle);
  EXPECT_EQ(pcs[2], into_outer);
  EXPECT_EQ(pcs[3], into_test);
}

TEST(CaptureStack, StopsSafelyOnAnyThread) {
  std::thread th([] {
    uint64_t pcs[kMaxFrames];
    uintptr_t a, b, c;
    EXPECT_GE(Outer(pcs, &a, &b, &c), 4u);
    EXPECT_LE(Outer(pcs, &a, &b, &c), kMaxFrames);
  });
  th.join();
}

// A walk from a function called by the helpers below (fiber entry, fake
// frame): pcs[3] is the return into WalkFromHere, pcs[4] WalkFromHere's own
// return address.
struct Walk {
  uint64_t pcs[kMaxFrames] = {};
  size_t n = 0;
  uintptr_t into_walk_from_here = 0;
};

__attribute__((noinline)) void WalkFromHere(void* out) {
  auto* w = static_cast<Walk*>(out);
  uintptr_t a = 0, b = 0;
  w->n = Outer(w->pcs, &a, &b, &w->into_walk_from_here);
  asm volatile("" ::: "memory");
}

// On the main thread and on a new thread (whose stack the sampler has not
// seen yet).
void OnMainAndNewThread(void (*body)()) {
  body();
  std::thread(body).join();
}

// A signal handler on an alternate stack whose frame chain leads to a
// PROT_NONE page just above the alternate stack (and so below the thread's
// stack): the walk reads the handler's frames and stops there.
TEST(CaptureStack, AltStackHandlerWithAGarbageChainStopsAtUnreadableMemory) {
  std::string how = stack_test::RunInChild([] {
    OnMainAndNewThread([] {
      stack_test::SideStack alt(64 * 1024);
      Walk w;
      stack_test::RunInAltStackHandler(alt.base(), alt.size(), WalkFromHere, &w, alt.unreadable());
      EXPECT_EQ(w.n, 5u);
      EXPECT_EQ(w.pcs[3], w.into_walk_from_here);
      EXPECT_EQ(w.pcs[4], reinterpret_cast<uintptr_t>(cppdiag_test_fake_frame_return));
    });
  });
  EXPECT_EQ(how, "exit 0");
}

// A fiber on a stack of its own whose first frame's caller chain is garbage:
// the walk stays on the fiber's stack, ending with the fiber entry's return.
TEST(CaptureStack, FiberWithAGarbageChainStopsAtTheEndOfItsStack) {
  std::string how = stack_test::RunInChild([] {
    OnMainAndNewThread([] {
      stack_test::SideStack fiber(64 * 1024);
      Walk w;
      stack_test::RunAsFiber(fiber.base(), fiber.size(), WalkFromHere, &w, fiber.unreadable());
      EXPECT_EQ(w.n, 6u) << "CaptureStack .. WalkFromHere, the fiber entry, its return";
      EXPECT_EQ(w.pcs[3], w.into_walk_from_here);
    });
  });
  EXPECT_EQ(how, "exit 0");
}

double StressSeconds() {
  const char* e = std::getenv("CPPDIAG_HEAP_STRESS_SECONDS");
  return e != nullptr ? std::atof(e) : 5.0;
}

// Eight threads inserting and removing blocks, most of them removed by
// another thread than the one that inserted them; the table ends empty.
// This is the stress test sanitizer builds run (they compile the hooks out).
// CPPDIAG_HEAP_STRESS_SECONDS sets the duration (default 5; the issue's
// acceptance run under ASan and TSan uses 60).
TEST(LiveTable, ConcurrentCrossThreadInsertRemove) {
  LiveTable t(size_t{1} << 16, 256);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(StressSeconds());
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::atomic<uintptr_t> handoff[kThreads] = {};
  for (int id = 0; id < kThreads; ++id) {
    threads.emplace_back([&, id] {
      uint64_t pcs[1] = {static_cast<uint64_t>(id)};
      uintptr_t base = (static_cast<uintptr_t>(id) + 1) << 32;
      for (uint64_t i = 0; (i & 1023) != 0 || std::chrono::steady_clock::now() < deadline; ++i) {
        uintptr_t p = base + static_cast<uintptr_t>(i % (uint64_t{1} << 26)) * 16;
        ASSERT_TRUE(t.Insert(p, 16, pcs, 1, 4096));
        // Hand p to the next thread; free what the previous thread handed us.
        uintptr_t stale = handoff[(id + 1) % kThreads].exchange(p);
        if (stale != 0) {  // not taken yet: ours to free
          ASSERT_EQ(t.Remove(stale), 16);
        }
        uintptr_t theirs = handoff[id].exchange(0);
        if (theirs != 0) {
          ASSERT_EQ(t.Remove(theirs), 16);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (auto& h : handoff) {
    if (uintptr_t p = h.load()) {
      EXPECT_EQ(t.Remove(p), 16);
    }
  }
  EXPECT_EQ(t.live_count(), 0u);
}

}  // namespace
}  // namespace cppdiag::heap
