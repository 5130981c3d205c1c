// The sample region alone (it needs no interposition, so sanitizer builds run
// these too), and the entry points on sampled blocks through the real hooks.
#include "diag/heap/internal/sample_region.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "diag/heap/allocation_hooks.h"
#include "diag/heap/heap_profiler.h"
#include "diag/heap/internal/profiler_hooks.h"
#include "diag/heap/sampler.h"
#include "diag/heap/stack_walk_test_util.h"

namespace cppdiag::heap {
namespace {

using hooks::SampleRegion;

// Static storage, as the hooks' region (it is not meant to be destroyed).
SampleRegion& TestRegion() {
  static SampleRegion* r = [] {
    auto* region = new SampleRegion;
    EXPECT_TRUE(region->Init());
    return region;
  }();
  return *r;
}

TEST(SampleRegion, ServesAlignedZeroedBlocksAndRecognisesThem) {
  SampleRegion& r = TestRegion();
  ASSERT_TRUE(r.ok());
  EXPECT_GE(r.max_block(), size_t{256} << 20);
  int local = 0;
  EXPECT_FALSE(r.Contains(&local));
  EXPECT_FALSE(r.Contains(nullptr));
  for (size_t size : {size_t{1}, size_t{16}, size_t{17}, size_t{100}, size_t{4096}, size_t{70000},
                      size_t{3} << 20}) {
    auto* p = static_cast<unsigned char*>(r.Alloc(size, 16, true));
    ASSERT_NE(p, nullptr) << size;
    EXPECT_TRUE(r.Contains(p));
    EXPECT_TRUE(r.Contains(p + size - 1));
    EXPECT_GE(r.UsableSize(p), size);
    EXPECT_LT(r.UsableSize(p), 2 * size + 16);
    for (size_t i = 0; i < size; i += 997) EXPECT_EQ(p[i], 0) << size;
    std::memset(p, 0xAB, size);
    r.Free(p);
  }
  for (size_t alignment : {size_t{64}, size_t{4096}, size_t{1} << 21}) {
    void* p = r.Alloc(100, alignment, false);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % alignment, 0u);
    r.Free(p);
  }
}

// The VmFlags of the mapping that holds `addr`, from /proc/self/smaps.
std::string VmFlagsAt(uintptr_t addr) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {  // a mapping's first line
      inside = addr >= lo && addr < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

// gdb's gcore (and any dumper that reads smaps) would write the reserved
// range out in full: 116 GiB of zeros. Reserved is do-not-dump; committed
// slots are the program's data and are dumped.
TEST(SampleRegion, OnlyCommittedSlotsAreInCoreDumps) {
  SampleRegion& r = TestRegion();
  ASSERT_TRUE(r.ok());
  void* p = r.Alloc(1000, 16, false);
  ASSERT_NE(p, nullptr);
  std::string used = VmFlagsAt(reinterpret_cast<uintptr_t>(p));
  std::string reserved = VmFlagsAt(r.lo() + r.span() - 4096);  // the largest class: never used
  r.Free(p);
  ASSERT_FALSE(used.empty());
  ASSERT_FALSE(reserved.empty());
  EXPECT_EQ(used.find(" dd"), std::string::npos) << used;
  EXPECT_NE(reserved.find(" dd"), std::string::npos) << reserved;
}

TEST(SampleRegion, ReusedSlotsAreZeroedWhenAsked) {
  SampleRegion& r = TestRegion();
  auto* p = static_cast<unsigned char*>(r.Alloc(200, 16, false));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0xCD, 200);
  r.Free(p);
  auto* q = static_cast<unsigned char*>(r.Alloc(200, 16, true));
  ASSERT_EQ(q, p) << "the slot just freed is handed out again";
  for (int i = 0; i < 200; ++i) ASSERT_EQ(q[i], 0);
  r.Free(q);
}

// Resident pages of [p, p + n), from mincore.
size_t ResidentPages(void* p, size_t n) {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> v((n + page - 1) / page);
  EXPECT_EQ(mincore(p, n, v.data()), 0);
  size_t resident = 0;
  for (unsigned char b : v) resident += b & 1;
  return resident;
}

// A freed slot of kReleaseBytes or more leaves the RSS (glibc unmaps the
// blocks of that size it serves); a smaller one stays resident for the next
// block of its class, as glibc's bins keep theirs (no syscall per free).
TEST(SampleRegion, LargeFreedSlotsLeaveTheRssSmallerOnesStay) {
  SampleRegion& r = TestRegion();
  size_t large = SampleRegion::kReleaseBytes;
  size_t small = SampleRegion::kReleaseBytes / 2;
  void* a = r.Alloc(large, 16, false);
  void* b = r.Alloc(small, 16, false);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::memset(a, 0xAB, large);
  std::memset(b, 0xAB, small);
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  ASSERT_EQ(ResidentPages(a, large), large / page);
  ASSERT_EQ(ResidentPages(b, small), small / page);
  r.Free(a);
  r.Free(b);
  EXPECT_EQ(ResidentPages(a, large), 0u) << "a large freed slot kept its pages";
  EXPECT_EQ(ResidentPages(b, small), small / page) << "a small freed slot gave its pages back";
  // Both read as zero when handed out again for calloc.
  auto* a2 = static_cast<unsigned char*>(r.Alloc(large, 16, true));
  auto* b2 = static_cast<unsigned char*>(r.Alloc(small, 16, true));
  ASSERT_EQ(a2, a);
  ASSERT_EQ(b2, b);
  for (size_t i = 0; i < small; i += 997) ASSERT_EQ(b2[i], 0) << i;
  for (size_t i = 0; i < large; i += 997) ASSERT_EQ(a2[i], 0) << i;
  r.Free(a2);
  r.Free(b2);
}

TEST(SampleRegion, TooLargeOrMisplacedIsRefusedOrIgnored) {
  SampleRegion& r = TestRegion();
  EXPECT_EQ(r.Alloc(r.max_block() + 1, 16, false), nullptr);
  EXPECT_EQ(r.Alloc(16, r.max_block() * 2, false), nullptr);
  auto* p = static_cast<char*>(r.Alloc(64, 16, false));
  ASSERT_NE(p, nullptr);
  r.Free(p + 8);  // not a slot's start: ignored
  void* q = r.Alloc(64, 16, false);
  EXPECT_NE(q, p) << "the slot was not given back by the misplaced free";
  r.Free(p);
  r.Free(q);
}

// Eight threads allocating and freeing blocks of mixed classes, most freed by
// another thread; every block keeps its contents until freed. Duration
// CPPDIAG_HEAP_STRESS_SECONDS (default 5; the acceptance run under ASan and
// TSan uses 60).
TEST(SampleRegion, ConcurrentCrossThreadAllocFree) {
  SampleRegion& r = TestRegion();
  double seconds = 5;
  if (const char* e = std::getenv("CPPDIAG_HEAP_STRESS_SECONDS")) seconds = std::atof(e);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  constexpr int kThreads = 8;
  std::atomic<void*> handoff[kThreads] = {};
  std::atomic<uint64_t> failures{0};
  std::vector<std::thread> threads;
  auto check_and_free = [&](void* p) {
    auto* b = static_cast<unsigned char*>(p);
    size_t size = 16u << (b[0] % 8);
    for (size_t i = 1; i < size; i *= 2) {
      if (b[i] != b[0]) failures.fetch_add(1);
    }
    r.Free(p);
  };
  for (int id = 0; id < kThreads; ++id) {
    threads.emplace_back([&, id] {
      uint64_t x = static_cast<uint64_t>(id) * 0x9E3779B97F4A7C15ull + 1;
      for (uint64_t i = 0; (i & 1023) != 0 || std::chrono::steady_clock::now() < deadline; ++i) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        unsigned cls = static_cast<unsigned>(x % 8);
        size_t size = 16u << cls;
        auto* p = static_cast<unsigned char*>(r.Alloc(size, 16, false));
        if (p == nullptr) {
          failures.fetch_add(1);
          continue;
        }
        unsigned char tag = static_cast<unsigned char>((x >> 8) & 0xF8) | cls;
        p[0] = tag;
        for (size_t j = 1; j < size; j *= 2) p[j] = tag;
        if (void* stale = handoff[(id + 1) % kThreads].exchange(p)) check_and_free(stale);
        if (void* theirs = handoff[id].exchange(nullptr)) check_and_free(theirs);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& h : handoff) {
    if (void* p = h.exchange(nullptr)) check_and_free(p);
  }
  EXPECT_EQ(failures.load(), 0u);
}

// ---- the entry points on sampled blocks (real hooks only) ----

// In a forked child: every allocation of this thread is sampled from now on.
void SampleEverything() {
  ASSERT_TRUE(StartHeapProfiler(1));
  ResetThreadSampler();
  void* volatile seed = std::malloc(16);  // the first draw samples nothing
  std::free(seed);
}

bool Sampled(const void* p) { return hooks::g_region.Contains(p); }

class SampledBlocks : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HooksActive()) GTEST_SKIP() << "sanitizer build: the sanitizer owns the allocator";
  }
};

TEST_F(SampledBlocks, EveryEntryPointWorksOnThem) {
  std::string how = stack_test::RunInChild([] {
    SampleEverything();
    size_t live = ProfilerTable()->live_count();
    auto* p = static_cast<char*>(std::malloc(1000));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(Sampled(p));
    EXPECT_EQ(ProfilerTable()->live_count(), live + 1);
    EXPECT_GE(HeapSampledBlockBytes(), 1024u) << "glibc's mallinfo2 does not see it";
    EXPECT_GE(malloc_usable_size(p), 1000u);
    std::memset(p, 'a', malloc_usable_size(p));
    // Region to region, growing and shrinking: the contents follow.
    p = static_cast<char*>(std::realloc(p, 5000));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p[999], 'a');
    std::memset(p, 'b', 5000);
    p = static_cast<char*>(std::realloc(p, 10));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p[9], 'b');
    EXPECT_EQ(ProfilerTable()->live_count(), live + 1) << "one live sample: the latest block";
    // Region to glibc (sampling off) and back.
    ASSERT_TRUE(StartHeapProfiler(uint64_t{1} << 40));
    ResetThreadSampler();
    p = static_cast<char*>(std::realloc(p, 3000));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p[9], 'b');
    EXPECT_EQ(ProfilerTable()->live_count(), live) << "moved to glibc: no longer sampled";
    SampleEverything();
    std::memset(p, 'c', 3000);
    p = static_cast<char*>(std::realloc(p, 6000));
    EXPECT_EQ(p[2999], 'c');
    EXPECT_EQ(ProfilerTable()->live_count(), live + 1);
    p = static_cast<char*>(reallocarray(p, 10, 700));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p[2999], 'c');
    std::free(p);
    EXPECT_EQ(ProfilerTable()->live_count(), live);

    auto* z = static_cast<unsigned char*>(std::calloc(100, 10));
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(z[i], 0);
    std::memset(z, 0xFF, 1000);
    std::free(z);
    z = static_cast<unsigned char*>(std::calloc(1000, 1));  // the same slot, reused
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(z[i], 0);
    std::free(z);

    for (size_t alignment : {size_t{32}, size_t{64}, size_t{4096}, size_t{1} << 20}) {
      void* a = nullptr;
      ASSERT_EQ(posix_memalign(&a, alignment, 100), 0);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % alignment, 0u);
      EXPECT_TRUE(Sampled(a));
      std::free(a);
      a = aligned_alloc(alignment, 2 * alignment);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % alignment, 0u);
      std::free(a);
      a = memalign(alignment, 7);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % alignment, 0u);
      std::free(a);
      a = ::operator new (300, std::align_val_t{alignment});
      EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % alignment, 0u);
      ::operator delete (a, std::align_val_t{alignment});
    }
    long page = sysconf(_SC_PAGESIZE);
    void* v = valloc(10);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v) % static_cast<uintptr_t>(page), 0u);
    std::free(v);
    v = pvalloc(10);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v) % static_cast<uintptr_t>(page), 0u);
    EXPECT_GE(malloc_usable_size(v), static_cast<size_t>(page));
    std::free(v);
    char* n = new char[77];
    EXPECT_TRUE(Sampled(n));
    delete[] n;
    EXPECT_EQ(ProfilerTable()->live_count(), live) << "every sampled block left the table";
  });
  EXPECT_EQ(how, "exit 0");
}

// With exact accounting, sampled blocks are counted by their slot's size on
// both sides: the account comes back to where it was. Sampled blocks that
// were live when accounting started are in its starting figure (glibc's
// mallinfo2 does not see them), so freeing them does not drive it below zero.
TEST_F(SampledBlocks, ExactAccountingBalancesSampledBlocks) {
  std::string how = stack_test::RunInChild([] {
    SampleEverything();
    std::vector<void*> early;
    early.reserve(16384);
    for (int i = 0; i < 16384; ++i) early.push_back(std::malloc(4000));  // 64 MiB of slots
    EnableExactHeapAccounting();
    uint64_t with_early = HeapInUseBytes();
    EXPECT_GE(with_early, 64u << 20) << "the early blocks are in the starting figure";
    for (void* b : early) std::free(b);
    uint64_t before = HeapInUseBytes();
    EXPECT_NEAR(static_cast<double>(with_early - before), 64.0 * (1 << 20), 512 * 1024)
        << "freeing them takes off what they added, without reaching 0";
    std::vector<void*> blocks;
    for (int i = 0; i < 4096; ++i) blocks.push_back(std::malloc(1000));
    EXPECT_GE(HeapInUseBytes(), before + 3u * 1024 * 1024);
    for (void*& b : blocks) b = std::realloc(b, 3000);
    for (void* b : blocks) std::free(b);
    double after = static_cast<double>(HeapInUseBytes());
    EXPECT_NEAR(after, static_cast<double>(before), 2 * 256 * 1024);
  });
  EXPECT_EQ(how, "exit 0");
}

}  // namespace
}  // namespace cppdiag::heap
