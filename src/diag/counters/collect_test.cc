#include "diag/counters/collect.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <latch>
#include <thread>
#include <vector>

#include "common/proc.h"
#include "diag/counters/catalog.h"
#include "diag/dump/self_dump.h"
#include "support/status_matchers.h"

namespace cppdiag::counters {
namespace {

using ::cppdiag::testing::IsOk;

TEST(Collect, ReportsThisProcessAsProcSeesIt) {
  CollectDetail detail;
  Sample s = CollectCounters(&detail);
  EXPECT_EQ(s.pid, ::getpid());
  EXPECT_GT(s.monotonic_ns, 0);
  EXPECT_GT(s.unix_ns, 1700000000LL * 1000000000);
  auto status = ReadProcStatus(::getpid());
  ASSERT_THAT(status, IsOk());
  ASSERT_TRUE(s.Get(names::kRss));
  EXPECT_NEAR(*s.Get(names::kRss), static_cast<double>(status->vm_rss_bytes), 8.0 * (1 << 20));
  EXPECT_EQ(s.Get(names::kThreads), status->threads);
  EXPECT_GE(*s.Get(names::kOpenFds), 3.0);
  EXPECT_GT(*s.Get(names::kMinorFaults), 0.0);
  EXPECT_TRUE(s.Get(names::kCpuSeconds));
  EXPECT_EQ(s.Get(names::kDumpsWritten), static_cast<double>(dump::SelfDumpsWritten()));
  // Every value is one the catalog names, and none is derived (the CLI does those).
  for (const auto& [name, value] : s.values) {
    const CounterInfo* c = FindCounter(name);
    ASSERT_NE(c, nullptr) << name;
    EXPECT_NE(c->kind, CounterKind::kDerived) << name;
  }
  if (detail.memory_cgroup) {
    EXPECT_TRUE(s.Get(names::kCgroupUsage));
    EXPECT_EQ(s.Get(names::kCgroupLimit).has_value(),
              detail.memory_cgroup->limit_bytes.has_value());
  }
  if (detail.cpu_cgroup) {
    EXPECT_EQ(s.Get(names::kCpuQuota).has_value(), detail.cpu_cgroup->quota_cores.has_value());
  }
}

TEST(Collect, SeesThreadsAndHeapGrow) {
  Sample before = CollectCounters();
  std::vector<char*> blocks;
  for (int i = 0; i < 64; ++i) {
    blocks.push_back(new char[1 << 20]);
    blocks.back()[0] = 1;
  }
  std::latch measured(1);
  std::thread t([&measured] {  // alive until the main thread has counted it
    Sample during = CollectCounters();
    Sample again = CollectCounters();
    EXPECT_GT(again.monotonic_ns, during.monotonic_ns);
    measured.wait();
  });
  Sample after = CollectCounters();
  measured.count_down();
  t.join();
  EXPECT_GE(*after.Get(names::kThreads), *before.Get(names::kThreads) + 1);
  if (auto in_use = before.Get(names::kHeapInUse)) {  // glibc's allocator (no sanitizer)
    EXPECT_GE(*after.Get(names::kHeapInUse), *in_use + 60.0 * (1 << 20));
  }
  if (auto a = before.Get(names::kHeapAllocated)) {
    EXPECT_GE(*after.Get(names::kHeapAllocated), *a + 60.0 * (1 << 20));
  }
  for (char* b : blocks) delete[] b;
}

}  // namespace
}  // namespace cppdiag::counters
