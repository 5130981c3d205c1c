#include "diag/heap/allocation_hooks.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "diag/heap/heap_profiler.h"

namespace cppdiag::heap {
namespace {

class HardLimit : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HooksActive()) GTEST_SKIP() << "sanitizer build: the sanitizer owns the allocator";
    EnableExactHeapAccounting();
  }
  void TearDown() override { SetHeapHardLimit(0); }
};

TEST_F(HardLimit, AccountsLiveBlocks) {
  ASSERT_TRUE(HeapAccountingExact());
  uint64_t before = HeapInUseBytes();
  std::vector<void*> blocks;
  for (int i = 0; i < 64; ++i) blocks.push_back(std::malloc(1 << 20));
  EXPECT_GE(HeapInUseBytes(), before + (63u << 20));
  for (void* p : blocks) std::free(p);
  EXPECT_LE(HeapInUseBytes(), before + (1u << 20));
}

TEST_F(HardLimit, OperatorNewThrowsBadAllocPastTheLimit) {
  SetHeapHardLimit(HeapInUseBytes() + (32u << 20));
  uint64_t failures_before = HeapLimitFailures();
  std::vector<std::unique_ptr<char[]>> held;
  bool threw = false;
  try {
    for (int i = 0; i < 100; ++i) held.emplace_back(new char[1 << 20]);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  EXPECT_TRUE(threw);
  EXPECT_GE(held.size(), 28u);
  EXPECT_LE(held.size(), 32u);
  EXPECT_GT(HeapLimitFailures(), failures_before);
  held.clear();
  EXPECT_NE(std::malloc(1 << 20), nullptr) << "memory freed below the limit is usable again";
}

// The new-handler loop of every operator new form: the handler runs while
// the limit refuses, and the allocation succeeds once it frees room (here:
// lifts the limit); a handler that throws ends the nothrow forms with nullptr.
int g_handler_calls = 0;

TEST_F(HardLimit, OperatorNewCallsTheNewHandlerUntilItMakesRoom) {
  SetHeapHardLimit(HeapInUseBytes() + (1u << 20));
  g_handler_calls = 0;
  std::set_new_handler([] {
    if (++g_handler_calls == 2) SetHeapHardLimit(0);
  });
  // ::operator new itself: a new-expression whose result goes unused may be
  // elided by the compiler.
  void* plain = ::operator new(8u << 20);
  EXPECT_EQ(g_handler_calls, 2);
  ::operator delete(plain);

  SetHeapHardLimit(HeapInUseBytes() + (1u << 20));
  g_handler_calls = 0;
  auto* aligned = static_cast<char*>(::operator new (8u << 20, std::align_val_t{4096}));
  EXPECT_EQ(g_handler_calls, 2);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(aligned) % 4096, 0u);
  ::operator delete (aligned, std::align_val_t{4096});

  SetHeapHardLimit(HeapInUseBytes() + (1u << 20));
  std::set_new_handler([] { throw std::bad_alloc(); });
  EXPECT_EQ(::operator new(8u << 20, std::nothrow), nullptr);
  EXPECT_EQ(::operator new (8u << 20, std::align_val_t{64}, std::nothrow), nullptr);
  EXPECT_THROW((void)::operator new(8u << 20), std::bad_alloc);
  std::set_new_handler(nullptr);
}

TEST_F(HardLimit, CAllocationFunctionsFailWithENOMEM) {
  SetHeapHardLimit(HeapInUseBytes() + (4u << 20));
  errno = 0;
  EXPECT_EQ(std::malloc(8u << 20), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(std::calloc(8, 1 << 20), nullptr);
  volatile size_t huge = SIZE_MAX / 2;       // volatile: keep the compiler from flagging it
  EXPECT_EQ(std::calloc(huge, 4), nullptr);  // n * size overflows
  void* p = nullptr;
  EXPECT_EQ(posix_memalign(&p, 64, 8u << 20), ENOMEM);
  EXPECT_EQ(aligned_alloc(64, 8u << 20), nullptr);
  EXPECT_EQ(memalign(64, 8u << 20), nullptr);
  EXPECT_EQ(valloc(8u << 20), nullptr);

  void* small = std::malloc(100);
  ASSERT_NE(small, nullptr);
  std::memset(small, 7, 100);
  EXPECT_EQ(std::realloc(small, 8u << 20), nullptr);
  EXPECT_EQ(static_cast<char*>(small)[99], 7) << "a refused realloc keeps the block";
  std::free(small);
}

TEST_F(HardLimit, ZeroTurnsItOff) {
  SetHeapHardLimit(1);
  EXPECT_EQ(std::malloc(1 << 20), nullptr);
  SetHeapHardLimit(0);
  void* p = std::malloc(1 << 20);
  EXPECT_NE(p, nullptr);
  std::free(p);
}

TEST_F(HardLimit, ZeroLeavesExactAccountingOn) {
  SetHeapHardLimit(1 << 30);
  SetHeapHardLimit(0);
  EXPECT_TRUE(HeapAccountingExact());
  uint64_t before = HeapInUseBytes();
  void* volatile p = std::malloc(8 << 20);  // volatile: the pair must not be elided
  EXPECT_GE(HeapInUseBytes(), before + (8u << 20));
  std::free(p);
}

// Each test runs in a process of its own under ctest; run together (one
// process), the first test that enables exact accounting leaves it on.
class Accounting : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HooksActive()) GTEST_SKIP() << "sanitizer build: the sanitizer owns the allocator";
    if (HeapAccountingExact()) {
      GTEST_SKIP() << "exact accounting already on in this process (run this test alone)";
    }
  }
};

TEST_F(Accounting, OffUntilEnabledInUseReadsZero) {
  std::vector<void*> blocks;
  for (int i = 0; i < 16; ++i) blocks.push_back(std::malloc(1 << 20));
  EXPECT_FALSE(HeapAccountingExact());
  EXPECT_EQ(HeapInUseBytes(), 0u);
  EXPECT_EQ(HeapTotalFreedBytes(), 0u);
  for (void* p : blocks) std::free(p);
}

// Blocks allocated before accounting started are freed through the accounted
// path: the count starts from glibc's figure, so it drops by what they held
// and never wraps below zero.
TEST_F(Accounting, EnabledLateStartsFromGlibcsFigureAndNeverGoesNegative) {
  std::vector<void*> early;
  for (int i = 0; i < 64; ++i) {
    early.push_back(std::malloc(1 << 20));
    std::memset(early.back(), 1, 64);
  }
  EnableExactHeapAccounting();
  ASSERT_TRUE(HeapAccountingExact());
  uint64_t with_early = HeapInUseBytes();
  EXPECT_GE(with_early, 64u << 20) << "glibc's in-use figure includes the early blocks";
  EXPECT_LT(with_early, 1u << 30);
  for (void* p : early) std::free(p);
  uint64_t after = HeapInUseBytes();
  EXPECT_LE(after, with_early - (63u << 20));
  EXPECT_LT(after, 64u << 20) << "no wrap-around: " << after;

  // And the limit works from there.
  SetHeapHardLimit(after + (16u << 20));
  std::vector<std::unique_ptr<char[]>> held;
  EXPECT_THROW(for (int i = 0; i < 64; ++i) held.emplace_back(new char[1 << 20]), std::bad_alloc);
  EXPECT_GE(held.size(), 12u);
  EXPECT_LE(held.size(), 16u);
  SetHeapHardLimit(0);
}

// A thread that was allocating when accounting started takes it up at its
// next slow path (within its countdown: 1 MiB here, the profiler is off) and
// counts from then on, on its exact path as on its slow one.
TEST_F(Accounting, AThreadAlreadyRunningCountsOnceItsCountdownRunsOut) {
  std::atomic<int> phase{0};  // 1: accounting is on; 2: the worker holds its blocks; 3: free them
  std::thread worker([&] {
    while (phase.load() == 0) {
      void* volatile p = std::malloc(256);
      std::free(p);
    }
    for (int i = 0; i < 8 * 1024; ++i) {  // 2 MiB: past its countdown
      void* volatile p = std::malloc(256);
      std::free(p);
    }
    std::vector<void*> held;
    for (int i = 0; i < 512; ++i) held.push_back(std::malloc(64 << 10));  // 32 MiB
    phase = 2;
    while (phase.load() != 3) std::this_thread::yield();
    for (void* p : held) std::free(p);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EnableExactHeapAccounting();
  uint64_t before = HeapInUseBytes();
  phase = 1;
  while (phase.load() != 2) std::this_thread::yield();
  // Unfolded: under kFoldBytes (256 KiB) of the worker's.
  EXPECT_GE(HeapInUseBytes(), before + (31u << 20));
  phase = 3;
  worker.join();
  EXPECT_LE(HeapInUseBytes(), before + (1u << 20));
}

// Requested bytes, counted at sampling points: the calling thread's own bytes
// are all in; another thread's last partial stride (here at most 1 MiB: the
// profiler is off in this test) may be lost when it exits.
TEST_F(Accounting, TotalAllocatedCountsRequestedBytesWithoutExactAccounting) {
  uint64_t before = HeapTotalAllocatedBytes();
  for (int i = 0; i < 64; ++i) {
    void* volatile p = std::malloc(1 << 20);
    std::free(p);
  }
  uint64_t own = HeapTotalAllocatedBytes() - before;
  EXPECT_GE(own, 64u << 20);
  EXPECT_LT(own, 65u << 20);

  before = HeapTotalAllocatedBytes();
  std::thread([] {
    for (int i = 0; i < 64 * 1024; ++i) {
      void* volatile p = std::malloc(1024);
      std::free(p);
    }
  }).join();
  uint64_t other = HeapTotalAllocatedBytes() - before;
  EXPECT_GE(other, 63u << 20);
  EXPECT_LT(other, 66u << 20);
  EXPECT_FALSE(HeapAccountingExact());
}

}  // namespace
}  // namespace cppdiag::heap
