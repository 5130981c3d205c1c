#include "diag/cpu/cpu_sampler.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/async_safe.h"
#include "diag/cpu/internal/sample_ring.h"
#include "diag/cpu/internal/signal_handler.h"
#include "support/subprocess.h"

// Functions in sections of their own, so a pc can be told to be in them
// (the linker defines __start_/__stop_ for each section).
extern "C" const char __start_cpu_test_leaf[], __stop_cpu_test_leaf[];
extern "C" const char __start_cpu_test_caller[], __stop_cpu_test_caller[];

namespace cppdiag::cpu {
namespace {

using internal::kMaxFrames;
using internal::kRingCapacity;
using internal::RawSample;
using internal::ThreadSlot;

bool InLeaf(uint64_t pc) {
  return pc >= reinterpret_cast<uintptr_t>(__start_cpu_test_leaf) &&
         pc < reinterpret_cast<uintptr_t>(__stop_cpu_test_leaf);
}
bool InCaller(uint64_t pc) {
  return pc >= reinterpret_cast<uintptr_t>(__start_cpu_test_caller) &&
         pc < reinterpret_cast<uintptr_t>(__stop_cpu_test_caller);
}

std::atomic<bool> g_stop_spinning{false};
std::atomic<uint64_t> g_sink{0};

// GCC 12 gives a leaf function that uses no stack no frame, even with
// -mno-omit-leaf-frame-pointer: the walk then goes from the caller's frame
// and misses the caller (the sampled program's limits are in
// cpu_sampler.h). This one keeps its state on the stack, so it has one.
__attribute__((noinline, section("cpu_test_leaf"))) void SpinLeaf() {
  volatile uint64_t x = 1;
  while (!g_stop_spinning.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 1000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
    g_sink.store(x, std::memory_order_relaxed);
  }
}

__attribute__((noinline, section("cpu_test_caller"))) void SpinCaller() {
  SpinLeaf();
  g_sink.fetch_add(1);  // keeps the call a call, not a jump
}

__attribute__((noinline, section("cpu_test_leaf"))) size_t WalkHere(uint64_t* pcs, size_t max) {
  ucontext_t uc;
  getcontext(&uc);
  size_t n = internal::WalkStack(&uc, pcs, max);
  g_sink.fetch_add(n);
  return n;
}

__attribute__((noinline, section("cpu_test_caller"))) size_t CallWalkHere(uint64_t* pcs,
                                                                          size_t max) {
  size_t n = WalkHere(pcs, max);
  g_sink.fetch_add(1);
  return n;
}

TEST(WalkStack, FollowsTheFramePointerChain) {
  uint64_t pcs[kMaxFrames] = {};
  size_t n = CallWalkHere(pcs, kMaxFrames);
  ASSERT_GE(n, 3u);
  EXPECT_TRUE(InLeaf(pcs[0])) << std::hex << pcs[0];
  EXPECT_TRUE(InCaller(pcs[1])) << std::hex << pcs[1];
  // Bounded by `max`.
  EXPECT_EQ(CallWalkHere(pcs, 2), 2u);
}

TEST(WalkStack, StopsAtAFramePointerOffTheStack) {
  ucontext_t uc;
  getcontext(&uc);
#if defined(__x86_64__)
  uc.uc_mcontext.gregs[REG_RBP] = 0x1000;  // below sp: never read
#elif defined(__aarch64__)
  uc.uc_mcontext.regs[29] = 0x1000;
#endif
  uint64_t pcs[kMaxFrames];
  EXPECT_EQ(internal::WalkStack(&uc, pcs, kMaxFrames), 1u);
}

// Producers write their own slot (as each thread's handler does) while one
// consumer drains them all: every sample is either drained once, in order,
// or counted lost. Run under TSan by the test command.
TEST(SampleRing, ManyProducersOneConsumer) {
  constexpr int kThreads = 6;
  constexpr uint64_t kPerThread = 5000;
  static ThreadSlot slots[kThreads];
  std::atomic<int> done{0};
  std::atomic<uint64_t> refused[kThreads] = {};
  std::vector<std::thread> producers;
  for (int i = 0; i < kThreads; ++i) {
    producers.emplace_back([&, i] {
      slots[i].tid.store(CurrentTid());
      for (uint64_t k = 1; k <= kPerThread; ++k) {
        RawSample* s = slots[i].ring.Reserve();
        // Even producers wait for room (the ring wraps many times), odd
        // ones drop, as the handler does.
        while (s == nullptr && i % 2 == 0) {
          refused[i].fetch_add(1);
          std::this_thread::yield();
          s = slots[i].ring.Reserve();
        }
        if (s == nullptr) continue;
        s->time_ns = k;
        s->depth = 1;
        s->pcs[0] = k * 3;
        slots[i].ring.Commit();
      }
      done.fetch_add(1);
    });
  }
  uint64_t drained[kThreads] = {}, last[kThreads] = {}, lost[kThreads] = {};
  bool ordered = true;
  auto drain_all = [&] {
    for (int i = 0; i < kThreads; ++i) {
      drained[i] += slots[i].ring.Drain([&](const RawSample& s) {
        ordered = ordered && s.time_ns > last[i] && s.pcs[0] == s.time_ns * 3;
        last[i] = s.time_ns;
      });
      lost[i] += slots[i].ring.TakeLost();
    }
  };
  while (done.load() < kThreads) drain_all();
  for (auto& t : producers) t.join();
  drain_all();
  EXPECT_TRUE(ordered);
  for (int i = 0; i < kThreads; ++i) {
    if (i % 2 == 0) {
      EXPECT_EQ(drained[i], kPerThread) << i;
      EXPECT_EQ(lost[i], refused[i].load()) << i;
    } else {
      EXPECT_EQ(drained[i] + lost[i], kPerThread) << i;
    }
  }
}

// Counts the samples of `tid` whose stack is SpinCaller -> SpinLeaf.
struct Tally {
  uint64_t total = 0, in_leaf = 0;
};
Tally Count(const std::vector<CpuSample>& samples, pid_t tid) {
  Tally t;
  for (const auto& s : samples) {
    if (s.tid != tid) continue;
    t.total += s.weight;
    if (s.pcs.size() >= 2 && InLeaf(s.pcs[0]) && InCaller(s.pcs[1])) t.in_leaf += s.weight;
  }
  return t;
}

class SamplerTest : public ::testing::Test {
 protected:
  void TearDown() override { g_stop_spinning.store(false); }
};

TEST_F(SamplerTest, CpuSamplesLandInTheSpinningFunction) {
  std::atomic<pid_t> spinner{0};
  std::thread t([&] {
    spinner.store(CurrentTid());
    SpinCaller();
  });
  ASSERT_TRUE(testing::PollUntil([&] { return spinner.load() != 0; }, std::chrono::seconds(10)));
  auto s = CpuSampler::Start({.kind = ProfileKind::kCpu, .rate_hz = 500});
  ASSERT_TRUE(s.ok()) << s.error().message();
  std::vector<CpuSample> samples;
  EXPECT_TRUE(testing::PollUntil(
      [&] {
        (*s)->Drain(&samples);
        return Count(samples, spinner.load()).total >= 50;
      },
      std::chrono::seconds(60)));
  g_stop_spinning.store(true);
  t.join();
  (*s)->Stop(&samples);
  Tally tally = Count(samples, spinner.load());
  EXPECT_GE(tally.in_leaf * 10, tally.total * 9) << tally.in_leaf << " of " << tally.total;
  // The test's main thread waits in PollUntil, off CPU: few samples.
  Tally main = Count(samples, CurrentTid());
  EXPECT_LT(main.total * 4, tally.total);
  ASSERT_EQ((*s)->threads().count(spinner.load()), 1u);
  EXPECT_TRUE((*s)->threads().at(spinner.load()).sampled);
}

TEST_F(SamplerTest, WallSamplesABlockedThreadAndCpuDoesNot) {
#if defined(__SANITIZE_THREAD__)
  // TSan holds an asynchronous signal back while its thread is blocked in
  // an intercepted call (read), so a blocked thread is never sampled there.
  GTEST_SKIP() << "TSan defers signals to threads blocked in read()";
#endif
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::atomic<pid_t> reader{0};
  std::thread t([&] {
    reader.store(CurrentTid());
    char c;
    ssize_t n = read(fds[0], &c, 1);  // SA_RESTART: sampling does not cut it short
    g_sink.fetch_add(static_cast<uint64_t>(n));
  });
  ASSERT_TRUE(testing::PollUntil([&] { return reader.load() != 0; }, std::chrono::seconds(10)));
  for (ProfileKind kind : {ProfileKind::kWall, ProfileKind::kCpu}) {
    auto s = CpuSampler::Start({.kind = kind, .rate_hz = 1000, .exclude_tids = {CurrentTid()}});
    ASSERT_TRUE(s.ok()) << s.error().message();
    std::vector<CpuSample> samples;
    uint64_t reader_samples = 0;
    // Wall: the blocked reader is sampled. CPU: it is not, while a thread of
    // the sampler's (this one, excluded) spends CPU waiting for 100 of its
    // own CPU milliseconds.
    timespec start;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
    testing::PollUntil(
        [&] {
          (*s)->Drain(&samples);
          reader_samples = Count(samples, reader.load()).total;
          if (kind == ProfileKind::kWall) return reader_samples >= 20;
          timespec now;
          for (int i = 0; i < 100000; ++i) g_sink.fetch_add(1);
          clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
          return (now.tv_sec - start.tv_sec) * 1000000000ll + (now.tv_nsec - start.tv_nsec) >
                 100000000ll;
        },
        std::chrono::seconds(60));
    (*s)->Stop(&samples);
    reader_samples = Count(samples, reader.load()).total;
    if (kind == ProfileKind::kWall) {
      EXPECT_GE(reader_samples, 20u);
    } else {
      EXPECT_LE(reader_samples, 2u);
    }
    EXPECT_EQ(Count(samples, CurrentTid()).total, 0u);  // excluded
  }
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  t.join();
  close(fds[0]);
  close(fds[1]);
}

TEST_F(SamplerTest, ThreadsStartedDuringTheTraceAreSampled) {
  auto s = CpuSampler::Start({.kind = ProfileKind::kCpu, .rate_hz = 500});
  ASSERT_TRUE(s.ok()) << s.error().message();
  std::atomic<pid_t> late{0};
  std::thread t([&] {
    late.store(CurrentTid());
    SpinCaller();
  });
  ASSERT_TRUE(testing::PollUntil([&] { return late.load() != 0; }, std::chrono::seconds(10)));
  std::vector<CpuSample> samples;
  EXPECT_TRUE(testing::PollUntil(
      [&] {
        (*s)->Rescan();
        (*s)->Drain(&samples);
        return Count(samples, late.load()).in_leaf >= 20;
      },
      std::chrono::seconds(60)));
  g_stop_spinning.store(true);
  t.join();
  // The ended thread's timer is retired by the next rescan.
  (*s)->Rescan();
  (*s)->Stop(&samples);
  EXPECT_GE(Count(samples, late.load()).in_leaf, 20u);
}

TEST_F(SamplerTest, FullRingsCountLostSamples) {
  // 10 kHz wall-clock samples of a thread nobody drains for 200 ms: its
  // ring (kRingCapacity) fills, the rest are counted lost.
  std::atomic<pid_t> spinner{0};
  auto s = CpuSampler::Start(
      {.kind = ProfileKind::kWall, .rate_hz = 10000, .exclude_tids = {CurrentTid()}});
  ASSERT_TRUE(s.ok()) << s.error().message();
  std::atomic<bool> go{false};
  std::thread t([&] {
    spinner.store(CurrentTid());
    while (!go.load()) g_sink.fetch_add(1);
    // 200 ms of this thread's CPU time (not wall time: on a busy machine it
    // may wait for a CPU, and a pending SIGPROF only counts overruns then).
    auto cpu_ns = [] {
      timespec ts;
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
      return static_cast<uint64_t>(ts.tv_sec) * 1000000000 + static_cast<uint64_t>(ts.tv_nsec);
    };
    uint64_t until = cpu_ns() + 200000000;
    while (cpu_ns() < until) g_sink.fetch_add(1);
  });
  ASSERT_TRUE(testing::PollUntil([&] { return spinner.load() != 0; }, std::chrono::seconds(10)));
  (*s)->Rescan();
  go.store(true);
  t.join();
  std::vector<CpuSample> samples;
  (*s)->Rescan();  // retires the ended thread, draining its ring
  (*s)->Stop(&samples);
  uint64_t kept = 0;
  for (const auto& x : samples) kept += x.tid == spinner.load() ? 1 : 0;
  EXPECT_LE(kept, kRingCapacity);
  EXPECT_GT((*s)->lost_samples(), 0u);
}

TEST_F(SamplerTest, OneAtATimeAndRatesInRange) {
  auto a = CpuSampler::Start({});
  ASSERT_TRUE(a.ok()) << a.error().message();
  auto b = CpuSampler::Start({});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code(), EBUSY);
  a->reset();
  EXPECT_TRUE(CpuSampler::Start({}).ok());  // free again
  EXPECT_EQ(CpuSampler::Start({.rate_hz = 0}).error().code(), EINVAL);
  EXPECT_EQ(CpuSampler::Start({.rate_hz = 20000}).error().code(), EINVAL);
  EXPECT_EQ(ParseProfileKind("wall").value(), ProfileKind::kWall);
  EXPECT_FALSE(ParseProfileKind("gpu").ok());
}

}  // namespace
}  // namespace cppdiag::cpu
