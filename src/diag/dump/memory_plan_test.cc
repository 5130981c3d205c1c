#include "diag/dump/internal/memory_plan.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <vector>

#include "diag/dump/testing/typical_process.h"

namespace cppdiag::dump {
namespace {

using testing::FakeProcessSnapshot;
using P = testing::TypicalProcess;
constexpr uint64_t kPage = 4096;

class Planner {
 public:
  explicit Planner(size_t segments = 256, size_t ranges = 256)
      : segments_(segments), ranges_(ranges) {}
  int Plan(const ProcessSnapshot& s, DumpType type) {
    PlanBuffers b{segments_.data(), segments_.size(), ranges_.data(), ranges_.size()};
    return PlanMemory(s, type, b, &plan_);
  }
  const MemoryPlan& plan() const { return plan_; }
  // Bytes of [start, end) that have data in the plan.
  uint64_t DataBytes(uint64_t start, uint64_t end) const {
    uint64_t n = 0;
    for (size_t i = 0; i < plan_.segment_count; ++i) {
      const PlannedSegment& s = plan_.segments[i];
      if (!s.has_data) continue;
      uint64_t a = std::max(s.start, start), b = std::min(s.end, end);
      if (a < b) n += b - a;
    }
    return n;
  }
  bool Stored(uint64_t addr) const { return DataBytes(addr, addr + 1) == 1; }
  const PlannedSegment* At(uint64_t addr) const {
    for (size_t i = 0; i < plan_.segment_count; ++i) {
      if (addr >= plan_.segments[i].start && addr < plan_.segments[i].end) {
        return &plan_.segments[i];
      }
    }
    return nullptr;
  }

 private:
  std::vector<PlannedSegment> segments_;
  std::vector<ByteRange> ranges_;
  MemoryPlan plan_;
};

// Every mapping is covered exactly by segments, in order, without overlap.
void ExpectCoversEveryMapping(const ProcessSnapshot& s, const MemoryPlan& plan) {
  size_t k = 0;
  for (size_t i = 0; i < s.mapping_count(); ++i) {
    const MappingSnapshot& m = s.mapping(i);
    uint64_t cursor = m.start;
    while (cursor < m.end) {
      ASSERT_LT(k, plan.segment_count) << "mapping " << i << " not covered";
      const PlannedSegment& seg = plan.segments[k++];
      ASSERT_EQ(seg.start, cursor) << "mapping " << i;
      ASSERT_LE(seg.end, m.end);
      EXPECT_EQ(seg.start % kPage, 0u);
      EXPECT_EQ(seg.end % kPage, 0u);
      EXPECT_EQ(seg.flags & PF_W, m.write ? PF_W : 0u);
      cursor = seg.end;
    }
  }
  EXPECT_EQ(k, plan.segment_count);
}

TEST(MemoryPlanTest, FullStoresEveryReadableMapping) {
  auto f = testing::MakeTypicalProcess();
  Planner p;
  ASSERT_EQ(p.Plan(*f, DumpType::kFull), 0);
  ExpectCoversEveryMapping(*f, p.plan());
  EXPECT_EQ(p.plan().segment_count, f->mapping_count());
  for (size_t i = 0; i < f->mapping_count(); ++i) {
    const MappingSnapshot& m = f->mapping(i);
    bool expected = m.read && m.path != "[vvar]";
    EXPECT_EQ(p.Stored(m.start), expected) << m.path << " at " << std::hex << m.start;
  }
  EXPECT_TRUE(p.At(P::kHeap)->anonymous);
  EXPECT_FALSE(p.At(P::kLibc)->anonymous);
}

TEST(MemoryPlanTest, HeapStoresAnonymousWrittenDataAndModuleHeaders) {
  auto f = testing::MakeTypicalProcess();
  Planner p;
  ASSERT_EQ(p.Plan(*f, DumpType::kHeap), 0);
  ExpectCoversEveryMapping(*f, p.plan());
  EXPECT_TRUE(p.Stored(P::kHeapMarker));
  EXPECT_EQ(p.DataBytes(P::kThreadStack, P::kThreadStack + 64 * kPage), 64 * kPage);
  EXPECT_TRUE(p.Stored(P::kStack));
  EXPECT_TRUE(p.Stored(P::kExeRelro + 0xe00));  // written relro: DT_DEBUG
  EXPECT_TRUE(p.Stored(P::kExeData));           // writable private file data
  EXPECT_TRUE(p.Stored(P::kLdsoData));
  EXPECT_TRUE(p.Stored(P::kSharedAnon));  // shared anonymous memory
  EXPECT_TRUE(p.Stored(P::kVdso));
  // Module headers only: first pages of ELF files, not their code or rodata.
  EXPECT_TRUE(p.Stored(P::kExe));
  EXPECT_TRUE(p.Stored(P::kLibc));
  EXPECT_EQ(p.DataBytes(P::kLibc, P::kLibc + 5 * kPage), kPage);
  EXPECT_FALSE(p.Stored(P::kExeText));
  EXPECT_FALSE(p.Stored(P::kExeRodata));
  EXPECT_FALSE(p.Stored(P::kSharedFile));  // shared file mappings are the file's
  EXPECT_FALSE(p.Stored(P::kVvar));
  EXPECT_FALSE(p.Stored(P::kThreadGuard));
}

TEST(MemoryPlanTest, HeapFallsBackToWritePermissionWithoutPageFlags) {
  auto f = testing::MakeTypicalProcess();
  f->DisablePageQueries();
  Planner p;
  ASSERT_EQ(p.Plan(*f, DumpType::kHeap), 0);
  EXPECT_TRUE(p.Stored(P::kExeData));
  EXPECT_TRUE(p.Stored(P::kExeRelro));  // read-only now, but right before the data: RELRO
  EXPECT_FALSE(p.Stored(P::kExeRodata));
  EXPECT_FALSE(p.Stored(P::kLibc + kPage));
}

TEST(MemoryPlanTest, MiniStoresStacksFromSpMinusRedZoneHeadersAndModuleList) {
  auto f = testing::MakeTypicalProcess();
  Planner p;
  ASSERT_EQ(p.Plan(*f, DumpType::kMini), 0);
  ExpectCoversEveryMapping(*f, p.plan());
  // Thread stack: from the page holding SP-128 to the end of the mapping.
  uint64_t from = (P::kThreadSp - kRedZone) & ~(kPage - 1);
  EXPECT_EQ(p.DataBytes(P::kThreadStack, P::kThreadStack + 64 * kPage),
            P::kThreadStack + 64 * kPage - from);
  EXPECT_FALSE(p.Stored(P::kThreadStack));
  EXPECT_TRUE(p.Stored(P::kMainSp - kRedZone));
  EXPECT_FALSE(p.Stored(P::kStack));
  // No heap data, but the heap page with libc's link_map (whole page in mini).
  EXPECT_FALSE(p.Stored(P::kHeapMarker));
  EXPECT_TRUE(p.Stored(P::kLibcLinkMap));
  EXPECT_FALSE(p.At(P::kLibcLinkMap)->exact);
  // Headers, written module data, vdso; no code.
  EXPECT_TRUE(p.Stored(P::kExe));
  EXPECT_TRUE(p.Stored(P::kExeRelro));
  EXPECT_TRUE(p.Stored(P::kExeData));
  EXPECT_TRUE(p.Stored(P::kLdsoData));
  EXPECT_TRUE(p.Stored(P::kVdso));
  EXPECT_FALSE(p.Stored(P::kExeText));
  EXPECT_FALSE(p.Stored(P::kLibc + kPage));
  EXPECT_FALSE(p.Stored(P::kSharedAnon));
}

TEST(MemoryPlanTest, TriageKeepsOnlyStacksHeadersAndExactModuleList) {
  auto f = testing::MakeTypicalProcess();
  Planner p;
  ASSERT_EQ(p.Plan(*f, DumpType::kTriage), 0);
  ExpectCoversEveryMapping(*f, p.plan());
  EXPECT_TRUE(p.Stored(P::kThreadSp));
  EXPECT_TRUE(p.Stored(P::kMainSp));
  EXPECT_TRUE(p.Stored(P::kExe));
  EXPECT_TRUE(p.Stored(P::kVdso));
  EXPECT_FALSE(p.Stored(P::kExeData));  // no module data
  EXPECT_FALSE(p.Stored(P::kHeapMarker));
  // The module list's pages are stored exactly: only its bytes.
  ASSERT_TRUE(p.Stored(P::kLibcLinkMap));
  EXPECT_TRUE(p.At(P::kLibcLinkMap)->exact);
  EXPECT_TRUE(p.At(P::kExeRelro + 0xe00)->exact);
  EXPECT_TRUE(p.At(P::kLdsoData + 0x100)->exact);
  bool found_name = false;
  for (size_t i = 0; i < p.plan().range_count; ++i) {
    const ByteRange& r = p.plan().ranges[i];
    if (r.start == P::kLibcLinkMap + 0x100) {
      found_name = r.exact && r.end == r.start + 15;
    }
    EXPECT_FALSE(r.exact && r.start <= P::kHeapSecret && r.end > P::kHeapSecret);
  }
  EXPECT_TRUE(found_name);
}

TEST(MemoryPlanTest, DontDumpMappingsHaveNoData) {
  FakeProcessSnapshot f;
  MappingSnapshot& m = f.AddMapping(0x10000, 4 * kPage, "rw-p");
  m.dont_dump = true;
  f.AddMapping(0x20000, kPage, "rw-p");
  f.AddMapping(0x30000, kPage, "rw-s", "/dev/mem", 0, 5).io = true;
  f.AddMapping(0x40000, kPage, "rw-s", "/dev/fb0", 0, 6).pfn_map = true;
  Planner p;
  ASSERT_EQ(p.Plan(f, DumpType::kFull), 0);
  EXPECT_FALSE(p.Stored(0x10000));
  EXPECT_TRUE(p.Stored(0x20000));
  EXPECT_FALSE(p.Stored(0x30000));
  EXPECT_FALSE(p.Stored(0x40000));
}

TEST(MemoryPlanTest, NoTypeStoresDontDumpOrDeviceMappings) {
  for (DumpType type : {DumpType::kFull, DumpType::kHeap, DumpType::kMini, DumpType::kTriage}) {
    auto f = testing::MakeTypicalProcess();
    // The worker's stack marked MADV_DONTDUMP: dd wins over the stack rule.
    const_cast<MappingSnapshot&>(f->mapping(FindMapping(*f, P::kThreadStack))).dont_dump = true;
    const_cast<MappingSnapshot&>(f->mapping(FindMapping(*f, P::kHeap))).io = true;
    const_cast<MappingSnapshot&>(f->mapping(FindMapping(*f, P::kExe))).pfn_map = true;
    Planner p;
    ASSERT_EQ(p.Plan(*f, type), 0);
    ExpectCoversEveryMapping(*f, p.plan());
    EXPECT_EQ(p.DataBytes(P::kThreadStack, P::kThreadStack + 64 * kPage), 0u) << DumpTypeName(type);
    EXPECT_FALSE(p.Stored(P::kThreadSp)) << DumpTypeName(type);
    EXPECT_FALSE(p.Stored(P::kHeapMarker)) << DumpTypeName(type);
    EXPECT_FALSE(p.Stored(P::kLibcLinkMap)) << DumpTypeName(type);  // in the io "heap"
    EXPECT_FALSE(p.Stored(P::kExe)) << DumpTypeName(type);
    EXPECT_TRUE(p.Stored(P::kMainSp)) << DumpTypeName(type);  // the other stack stays
  }
}

// The heap type under /proc/<pid>/coredump_filter values other than 0x33.
struct FilterCase {
  uint32_t filter;
  uint64_t addr;
  bool stored;
  const char* what;
};

TEST(MemoryPlanTest, HeapFollowsTheCoredumpFilter) {
  const FilterCase cases[] = {
      {0x33, P::kSharedAnon, true, "anonymous shared, bit 1"},
      {0x31, P::kSharedAnon, false, "anonymous shared, bit 1"},
      {0x33, P::kExeText, false, "unwritten private file mapping, bit 2"},
      {0x37, P::kExeText, true, "unwritten private file mapping, bit 2"},
      {0x37, P::kLibc + kPage, true, "unwritten private file mapping, bit 2"},
      {0x33, P::kSharedFile, false, "shared file mapping, bit 3"},
      {0x3b, P::kSharedFile, true, "shared file mapping, bit 3"},
      {0x33, P::kLibc, true, "ELF header page, bit 4"},
      {0x23, P::kLibc, false, "ELF header page, bit 4"},
      {0x32, P::kHeapMarker, false, "anonymous private, bit 0"},
      {0x32, P::kExeData, false, "written private file data, bit 0"},
      // Without bit 0, mini's part still makes backtraces possible.
      {0x32, P::kThreadSp, true, "a thread's stack from its SP"},
      {0x32, P::kLibcLinkMap, true, "the module list"},
      {0x00, P::kVdso, true, "the vDSO, always"},
      {0x1ff, P::kVvar, false, "[vvar]: dd, io, pf"},
  };
  for (const FilterCase& c : cases) {
    auto f = testing::MakeTypicalProcess();
    f->info().coredump_filter = c.filter;
    Planner p;
    ASSERT_EQ(p.Plan(*f, DumpType::kHeap), 0);
    ExpectCoversEveryMapping(*f, p.plan());
    EXPECT_EQ(p.Stored(c.addr), c.stored) << c.what << ", filter 0x" << std::hex << c.filter;
  }
}

TEST(MemoryPlanTest, HugetlbMemoryFollowsBitsFiveAndSix) {
  FakeProcessSnapshot f;
  f.AddMapping(0x200000, 0x200000, "rw-p", "/anon_hugepage (deleted)", 0, 9).hugetlb = true;
  f.AddMapping(0x600000, 0x200000, "rw-s", "/anon_hugepage (deleted)", 0, 10).hugetlb = true;
  f.Fill(0x200000, kPage, 1);
  f.Fill(0x600000, kPage, 1);
  Planner p;
  ASSERT_EQ(p.Plan(f, DumpType::kHeap), 0);  // 0x33: private yes, shared no
  EXPECT_TRUE(p.Stored(0x200000));
  EXPECT_FALSE(p.Stored(0x600000));
  f.info().coredump_filter = 0x53;
  ASSERT_EQ(p.Plan(f, DumpType::kHeap), 0);
  EXPECT_FALSE(p.Stored(0x200000));
  EXPECT_TRUE(p.Stored(0x600000));
}

TEST(MemoryPlanTest, TooFewSegmentsIsAnError) {
  auto f = testing::MakeTypicalProcess();
  Planner p(/*segments=*/4);
  EXPECT_EQ(p.Plan(*f, DumpType::kMini), ENOBUFS);
}

TEST(MemoryPlanTest, RangesThatDoNotFitAreReported) {
  auto f = testing::MakeTypicalProcess();
  Planner p(/*segments=*/256, /*ranges=*/3);
  ASSERT_EQ(p.Plan(*f, DumpType::kMini), 0);
  EXPECT_TRUE(p.plan().ranges_truncated);
  ExpectCoversEveryMapping(*f, p.plan());
}

TEST(MemoryPlanTest, AnonymousSharedRecognition) {
  MappingSnapshot m;
  m.shared = true;
  m.path = "/dev/zero (deleted)";
  EXPECT_TRUE(IsAnonymousShared(m));
  m.path = "/memfd:pool (deleted)";
  EXPECT_TRUE(IsAnonymousShared(m));
  m.path = "/SYSV00000000";
  EXPECT_TRUE(IsAnonymousShared(m));
  m.path = "/data/db";
  EXPECT_FALSE(IsAnonymousShared(m));
  m.path = "/tmp/unlinked (deleted)";  // no link left: the kernel counts it as anonymous
  EXPECT_TRUE(IsAnonymousShared(m));
  m.path = "/dev/zero (deleted)";
  m.shared = false;
  EXPECT_FALSE(IsAnonymousShared(m));
}

}  // namespace
}  // namespace cppdiag::dump
