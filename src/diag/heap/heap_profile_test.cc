// The profiler through the real hooks (skipped in sanitizer builds, which
// keep the sanitizer's allocator; sampler_test.cc covers the parts there).
#include "diag/heap/heap_profile.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "diag/heap/allocation_hooks.h"
#include "diag/heap/heap_note.h"
#include "diag/heap/heap_profiler.h"
#include "diag/heap/sampler.h"
#include "diag/heap/stack_walk_test_util.h"

namespace cppdiag::heap {
namespace {

class Profiler : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HooksActive()) GTEST_SKIP() << "sanitizer build: the sanitizer owns the allocator";
    ASSERT_TRUE(StartHeapProfiler(64 * 1024));
    ResetThreadSampler();
  }
};

// The stack (if any) whose frame [1] is `ra`: the caller of the allocation
// function is at [0], its caller at [1].
const HeapStackSample* FindStack(const HeapProfile& p, uintptr_t ra) {
  const HeapStackSample* best = nullptr;
  for (const auto& s : p.stacks) {
    if (s.pcs.size() >= 2 && s.pcs[1] == ra) {
      if (best == nullptr || s.estimated_bytes > best->estimated_bytes) best = &s;
    }
  }
  return best;
}

__attribute__((noinline)) void LeakWithMalloc(std::vector<void*>* out, size_t n, size_t size,
                                              uintptr_t* ra) {
  *ra = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  for (size_t i = 0; i < n; ++i) {
    void* p = std::malloc(size);
    std::memset(p, 1, 16);
    out->push_back(p);
  }
}

__attribute__((noinline)) void LeakWithNew(std::vector<char*>* out, size_t n, size_t size,
                                           uintptr_t* ra) {
  *ra = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  for (size_t i = 0; i < n; ++i) out->push_back(new char[size]);
}

TEST_F(Profiler, EstimatesTheLeakingMallocStack) {
  std::vector<void*> blocks;
  blocks.reserve(16384);
  uintptr_t ra = 0;
  LeakWithMalloc(&blocks, 16384, 4096, &ra);  // 64 MiB
  HeapProfile p = CollectHeapProfile();
  EXPECT_EQ(p.sample_period_bytes, 64u * 1024);
  const HeapStackSample* s = FindStack(p, ra);
  ASSERT_NE(s, nullptr);
  EXPECT_NEAR(s->estimated_bytes, 64.0 * (1 << 20), 0.10 * 64 * (1 << 20));
  EXPECT_NEAR(s->estimated_count, 16384.0, 0.10 * 16384);
  EXPECT_GT(p.total_allocated_bytes, 60u << 20);
  for (void* b : blocks) std::free(b);
  HeapProfile after = CollectHeapProfile();
  EXPECT_EQ(FindStack(after, ra), nullptr) << "freed samples leave the table";
}

TEST_F(Profiler, AttributesOperatorNewToItsCaller) {
  std::vector<char*> blocks;
  blocks.reserve(8192);
  uintptr_t ra = 0;
  LeakWithNew(&blocks, 8192, 8192, &ra);  // 64 MiB
  HeapProfile p = CollectHeapProfile();
  const HeapStackSample* s = FindStack(p, ra);
  ASSERT_NE(s, nullptr);
  EXPECT_NEAR(s->estimated_bytes, 64.0 * (1 << 20), 0.10 * 64 * (1 << 20));
  for (char* b : blocks) delete[] b;
  EXPECT_EQ(FindStack(CollectHeapProfile(), ra), nullptr);
}

TEST_F(Profiler, SizedAlignedAndNothrowFormsKeepTheTableConsistent) {
  size_t before = ProfilerTable()->live_count();
  for (int i = 0; i < 20000; ++i) {
    auto* a = new std::array<char, 4000>;
    delete a;  // sized delete
    void* b = ::operator new (5000, std::align_val_t{64});
    ASSERT_EQ(reinterpret_cast<uintptr_t>(b) % 64, 0u);
    ::operator delete (b, 5000, std::align_val_t{64});
    char* c = new (std::nothrow) char[3000];
    delete[] c;
    void* r = std::realloc(nullptr, 100);
    r = std::realloc(r, 9000);
    std::free(r);
  }
  EXPECT_LE(ProfilerTable()->live_count(), before);
}

// A request of 2^63 bytes or more fails; it must not wrap the thread's
// countdown into a huge positive value (which would stop its sampling).
TEST_F(Profiler, AHugeFailedMallocDoesNotStopSampling) {
  // 2^63 + 16 MiB: countdown - size, wrapped, is just under 2^63 for any
  // countdown below 16 MiB. volatile: no compile-time size warning.
  volatile size_t huge = SIZE_MAX / 2 + 1 + (size_t{16} << 20);
  void* volatile p = std::malloc(huge);
  EXPECT_EQ(p, nullptr);
  std::vector<void*> blocks;
  uintptr_t ra = 0;
  LeakWithMalloc(&blocks, 1024, 64 * 1024, &ra);  // 64 MiB
  const HeapStackSample* s = FindStack(CollectHeapProfile(), ra);
  ASSERT_NE(s, nullptr);
  EXPECT_NEAR(s->estimated_bytes, 64.0 * (1 << 20), 0.2 * 64 * (1 << 20));
  for (void* b : blocks) std::free(b);
}

TEST_F(Profiler, HardLimitStillAppliesToNew) {
  EnableExactHeapAccounting();
  SetHeapHardLimit(HeapInUseBytes() + (8u << 20));
  // Through volatile pointers: the compiler may elide a new whose result is unused.
  char* volatile sink = nullptr;
  EXPECT_THROW(sink = new char[16u << 20], std::bad_alloc);
  sink = new (std::nothrow) char[16u << 20];
  EXPECT_EQ(sink, nullptr);
  void* volatile raw = nullptr;
  EXPECT_THROW(raw = ::operator new (16u << 20, std::align_val_t{64}), std::bad_alloc);
  EXPECT_EQ(raw, nullptr);
  SetHeapHardLimit(0);
}

TEST_F(Profiler, MappingsCarryBuildIds) {
  HeapProfile p = CollectHeapProfile();
  ASSERT_FALSE(p.mappings.empty());
  bool self = false;
  for (const auto& m : p.mappings) {
    EXPECT_LT(m.start, m.end);
    if (m.path.find("heap_unit_test") != std::string::npos) {
      self = true;
      EXPECT_EQ(m.build_id.size(), 40u) << "sha1 build-id in hex";
    }
  }
  EXPECT_TRUE(self);
}

class CountingOutput : public dump::NoteOutput {
 public:
  void Begin(const char* name, uint32_t type, size_t size) override {
    name_ = name;
    type_ = type;
    declared_ = size;
  }
  void Append(const void* data, size_t len) override {
    data_.append(static_cast<const char*>(data), len);
  }
  std::string name_, data_;
  uint32_t type_ = 0;
  size_t declared_ = 0;
};

TEST_F(Profiler, DumpNoteCarriesTheLiveTable) {
  std::vector<void*> blocks;
  blocks.reserve(4096);
  uintptr_t ra = 0;
  LeakWithMalloc(&blocks, 4096, 4096, &ra);
  CountingOutput out;
  WriteHeapNote(nullptr, &out);
  EXPECT_EQ(out.name_, "CPPDIAG");
  EXPECT_EQ(out.type_, kNtCppdiagHeap);
  ASSERT_EQ(out.data_.size(), out.declared_);
  auto u32 = [&](size_t off) {
    uint32_t v;
    std::memcpy(&v, out.data_.data() + off, 4);
    return v;
  };
  auto u64 = [&](size_t off) {
    uint64_t v;
    std::memcpy(&v, out.data_.data() + off, 8);
    return v;
  };
  EXPECT_EQ(u32(0), kHeapNoteVersion);
  EXPECT_EQ(u64(8), 64u * 1024);
  uint32_t records = u32(32);
  size_t off = kHeapNoteHeaderSize;
  bool found = false;
  for (uint32_t i = 0; i < records; ++i) {
    uint32_t depth = u32(off + 32);
    if (u64(off) > 0 && depth >= 2 && u64(off + kHeapNoteRecordHeaderSize + 8) == ra) {
      double est;
      std::memcpy(&est, out.data_.data() + off + 24, 8);
      EXPECT_NEAR(est, 16.0 * (1 << 20), 0.25 * 16 * (1 << 20));
      found = true;
    }
    off += kHeapNoteRecordHeaderSize + 8 * depth;
  }
  EXPECT_EQ(off, out.data_.size());
  EXPECT_TRUE(found);
  for (void* b : blocks) std::free(b);
}

TEST_F(Profiler, ForkChildAllocatesWhileParentThreadsSample) {
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    while (!stop.load()) std::free(std::malloc(70000));
  });
  for (int i = 0; i < 20; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int j = 0; j < 10000; ++j) std::free(std::malloc(70000));
      CollectHeapProfile();
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  stop = true;
  busy.join();
}

// In a forked child: every allocation of this thread from now on is sampled
// (the first one only draws the stride).
void SampleEveryAllocation() {
  ASSERT_TRUE(StartHeapProfiler(1));
  ResetThreadSampler();
  void* volatile seed = std::malloc(16);
  std::free(seed);
}

// The tid of a sample's thread: the sampling thread's own, and in a fork
// child the child's (the thread state caches it across samples, and the
// child's copy must not keep the parent's).
pid_t TidOfNextSample() {
  LiveTable* table = ProfilerTable();
  uint64_t cursor = HeapSampleCursor();
  uint64_t missed = 0;
  void* volatile block = std::malloc(48);
  RecentSample first{};
  const size_t n = table == nullptr ? 0 : table->ReadRecent(&cursor, &first, 1, &missed);
  std::free(block);
  return n == 0 ? -1 : first.tid;
}

TEST_F(Profiler, SamplesCarryTheirThreadsIdAlsoAfterFork) {
  std::string how = stack_test::RunInChild([] {
    SampleEveryAllocation();
    EXPECT_EQ(TidOfNextSample(), gettid());
    EXPECT_EQ(TidOfNextSample(), gettid());
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(TidOfNextSample() == gettid() ? 0 : 1);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child's sample has its tid";
    std::thread([] {
      ResetThreadSampler();
      void* volatile seed = std::malloc(16);
      std::free(seed);
      EXPECT_EQ(TidOfNextSample(), gettid());
    }).join();
  });
  EXPECT_EQ(how, "exit 0");
}

// glibc's pthread_getattr_np allocates (its cpuset) while it holds the
// thread's lock: when that allocation is the thread's first sample, the
// sampler must not ask glibc for the thread's stack (pthread_getattr_np
// again: a self-deadlock). Programs call it at thread start (Rust's std, JVMs,
// sanitizers), so a thread's first sample often lands there.
TEST_F(Profiler, FirstSampleOfAThreadInsidePthreadGetattrNpDoesNotDeadlock) {
  std::string how = stack_test::RunInChild([] {
    std::thread([] {
      SampleEveryAllocation();
      uint64_t samples = ProfilerTable()->live_count();
      pthread_attr_t attr;
      ASSERT_EQ(pthread_getattr_np(pthread_self(), &attr), 0);
      EXPECT_GT(ProfilerTable()->live_count(), samples) << "its allocation was sampled";
      pthread_attr_destroy(&attr);
    }).join();
  });
  EXPECT_EQ(how, "exit 0");
}

void* g_fiber_block = nullptr;
uintptr_t g_fiber_ra = 0;

__attribute__((noinline)) void AllocateInFiber(void*) {
  g_fiber_ra = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  g_fiber_block = std::malloc(100);
  asm volatile("" ::: "memory");
}

// A fiber on a heap-allocated stack whose first frame's caller chain points to
// unreadable memory (above the fiber's stack, below the thread's): its sampled
// allocation is recorded with the fiber's frames only.
TEST_F(Profiler, SampleInAFiberOnAHeapStackStaysOnTheFibersStack) {
  std::string how = stack_test::RunInChild([] {
    SampleEveryAllocation();
    stack_test::SideStack unreadable(4096);
    size_t size = 64 * 1024;
    char* heap_stack = static_cast<char*>(std::malloc(size));
    ASSERT_LT(reinterpret_cast<uintptr_t>(heap_stack) + size, unreadable.unreadable())
        << "the layout this test needs: the heap below the mappings";
    stack_test::RunAsFiber(heap_stack, size, AllocateInFiber, nullptr, unreadable.unreadable());
    HeapProfile p = CollectHeapProfile();
    const HeapStackSample* s = FindStack(p, g_fiber_ra);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->pcs.size(), 3u) << "AllocateInFiber, the fiber entry, its return";
    std::free(g_fiber_block);
    std::free(heap_stack);
  });
  EXPECT_EQ(how, "exit 0");
}

void* g_handler_block = nullptr;

__attribute__((noinline)) void AllocateInHandler(void*) {
  g_handler_block = std::malloc(100);
  asm volatile("" ::: "memory");
}

// A sampled malloc in a signal handler on an alternate stack, its frame chain
// leading to unreadable memory (between the alternate stack and the thread's):
// recorded with the handler's frames only.
TEST_F(Profiler, SampleInAnAltStackHandlerStopsAtAGarbageFrame) {
  std::string how = stack_test::RunInChild([] {
    SampleEveryAllocation();
    stack_test::SideStack alt(64 * 1024);
    stack_test::RunInAltStackHandler(alt.base(), alt.size(), AllocateInHandler, nullptr,
                                     alt.unreadable());
    HeapProfile p = CollectHeapProfile();
    const HeapStackSample* s =
        FindStack(p, reinterpret_cast<uintptr_t>(cppdiag_test_fake_frame_return));
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->pcs.size(), 2u) << "AllocateInHandler, its return";
    std::free(g_handler_block);
  });
  EXPECT_EQ(how, "exit 0");
}

std::atomic<uintptr_t> g_stress_ra{0};

__attribute__((noinline)) void* StressAlloc(size_t size, bool use_malloc) {
  g_stress_ra.store(reinterpret_cast<uintptr_t>(__builtin_return_address(0)),
                    std::memory_order_relaxed);
  void* p = use_malloc ? std::malloc(size) : static_cast<void*>(new char[size]);
  asm volatile("" ::: "memory");  // no tail call: keep this frame
  return p;
}

// Eight threads allocating through the real hooks at a small period, half
// the blocks freed by another thread, for CPPDIAG_HEAP_STRESS_SECONDS
// (default 5; the acceptance run uses 60). Every block is freed at
// the end.
void RunStress() {
  double seconds = 5;
  if (const char* e = std::getenv("CPPDIAG_HEAP_STRESS_SECONDS")) seconds = std::atof(e);
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  std::atomic<void*> handoff[kThreads] = {};
  std::atomic<bool> stop{false};
  for (int id = 0; id < kThreads; ++id) {
    threads.emplace_back([&, id] {
      uint64_t x = static_cast<uint64_t>(id) + 1;
      void* local[64] = {};
      while (!stop.load(std::memory_order_relaxed)) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t size = 16 + (x % 4096);
        void* p = StressAlloc(size, x & 1);
        if (x & 2) {
          if (void* stale = handoff[(id + 1) % kThreads].exchange(p)) std::free(stale);
          if (void* theirs = handoff[id].exchange(nullptr)) std::free(theirs);
        } else {
          size_t slot = (x >> 8) % 64;
          std::free(local[slot]);
          local[slot] = p;
        }
      }
      for (void* p : local) std::free(p);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  for (auto& h : handoff) std::free(h.exchange(nullptr));
}

TEST_F(Profiler, StressCrossThreadFreesLeaveNoEntries) {
  ASSERT_TRUE(StartHeapProfiler(4096));
  size_t before = ProfilerTable()->live_count();
  RunStress();
  // glibc keeps a few blocks of its own per thread (the TLS vector of cached
  // thread stacks): check the workers' stack only.
  HeapProfile p = CollectHeapProfile();
  const HeapStackSample* left = FindStack(p, g_stress_ra.load());
  EXPECT_EQ(left, nullptr) << "a stress allocation freed but still in the table";
  EXPECT_LE(ProfilerTable()->live_count(), before + 64);
  EXPECT_EQ(ProfilerTable()->dropped(), 0u);
  StartHeapProfiler(64 * 1024);
}

// The same with a hard limit set (every call on an accounted path): the
// table ends empty of the workers' blocks and the live count comes back to
// where it was, within what the exiting threads had not folded yet (256 KiB
// of allocations and of frees each).
TEST_F(Profiler, StressWithTheHardLimitBalancesTheAccount) {
  ASSERT_TRUE(StartHeapProfiler(4096));
  EnableExactHeapAccounting();
  SetHeapHardLimit(uint64_t{64} << 30);
  uint64_t before = HeapInUseBytes();
  uint64_t failures = HeapLimitFailures();
  RunStress();
  double after = static_cast<double>(HeapInUseBytes());
  EXPECT_NEAR(after, static_cast<double>(before), 8 * 2 * 256 * 1024 + (1 << 20));
  EXPECT_EQ(HeapLimitFailures(), failures);
  EXPECT_EQ(FindStack(CollectHeapProfile(), g_stress_ra.load()), nullptr);
  SetHeapHardLimit(0);
  StartHeapProfiler(64 * 1024);
}

}  // namespace
}  // namespace cppdiag::heap
