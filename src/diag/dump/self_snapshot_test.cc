#include "diag/dump/self_snapshot.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "common/proc.h"
#include "common/scoped_fd.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"

namespace cppdiag::dump {
namespace {

using ::cppdiag::testing::IsOk;

using ::cppdiag::testing::ScopedTempDir;

constexpr size_t kPage = 4096;

class SelfSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    smaps_.reset(::open("/proc/self/smaps", O_RDONLY | O_CLOEXEC));
    pagemap_.reset(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
    text_.resize(1 << 20);
    mappings_.resize(4096);
    Load(-1);
  }
  // Configures the snapshot (memory read through `mem_fd`, or with
  // process_vm_readv if -1) and loads it.
  void Load(int mem_fd) {
    SelfSnapshot::Resources r;
    r.mem_fd = mem_fd;
    r.smaps_fd = smaps_.get();
    r.pagemap_fd = pagemap_.get();
    r.maps_text = text_.data();
    r.maps_capacity = text_.size();
    r.mappings = mappings_.data();
    r.max_mappings = mappings_.size();
    snapshot_.Configure(r);
    bool truncated = true;
    ASSERT_EQ(snapshot_.Load(&truncated), 0);
    EXPECT_FALSE(truncated);
  }
  ScopedFd smaps_, pagemap_;
  std::vector<char> text_;
  std::vector<MappingSnapshot> mappings_;
  SelfSnapshot snapshot_;
};

TEST_F(SelfSnapshotTest, ReadsUpToTheFirstUnreadablePage) {
  auto* p = static_cast<uint8_t*>(
      ::mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 0xab, 3 * kPage);
  ASSERT_EQ(::mprotect(p + kPage, kPage, PROT_NONE), 0);
  ASSERT_EQ(::munmap(p + 2 * kPage, kPage), 0);
  std::vector<uint8_t> buf(3 * kPage, 0);
  uint64_t addr = reinterpret_cast<uint64_t>(p) + 100;
  ssize_t n = snapshot_.ReadMemory(addr, buf.data(), buf.size() - 100);
  EXPECT_EQ(n, kPage - 100);  // process_vm_readv stops at the PROT_NONE page
  EXPECT_EQ(buf[0], 0xab);
  // Unmapped: -EFAULT.
  EXPECT_LT(snapshot_.ReadMemory(reinterpret_cast<uint64_t>(p) + 2 * kPage, buf.data(), 10), 0);
  EXPECT_LT(snapshot_.ReadMemory(0xffffffffff600000ULL, buf.data(), 10), 0);
  ::munmap(p, 2 * kPage);
}

// Through /proc/self/mem: the same count, up to the first unmapped page (a
// PROT_NONE page reads there, as the kernel's core stores it: FOLL_FORCE),
// -EIO when the first page is unmapped.
TEST_F(SelfSnapshotTest, ThroughProcSelfMemReadsUpToTheFirstUnmappedPage) {
  ScopedFd mem(::open("/proc/self/mem", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(mem.is_valid()) << std::strerror(errno);
  Load(mem.get());
  auto* p = static_cast<uint8_t*>(
      ::mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 0xab, kPage);
  std::memset(p + kPage, 0xcd, kPage);
  ASSERT_EQ(::munmap(p + 2 * kPage, kPage), 0);
  std::vector<uint8_t> buf(3 * kPage, 0);
  uint64_t addr = reinterpret_cast<uint64_t>(p) + 100;
  EXPECT_EQ(snapshot_.ReadMemory(addr, buf.data(), buf.size() - 100), 2 * kPage - 100);
  EXPECT_EQ(buf[0], 0xab);
  EXPECT_EQ(buf[2 * kPage - 101], 0xcd);
  EXPECT_EQ(snapshot_.ReadMemory(reinterpret_cast<uint64_t>(p) + 2 * kPage, buf.data(), 10), -EIO);
  EXPECT_EQ(snapshot_.ReadMemory(0xffffffffff600000ULL, buf.data(), 10), -EINVAL);
  ::munmap(p, 2 * kPage);
}

// A descriptor the pread fails on for another reason than an unreadable
// page (here EBADF): each read falls back to process_vm_readv.
TEST_F(SelfSnapshotTest, AFailingMemDescriptorFallsBackToProcessVmReadv) {
  ScopedFd not_readable(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(not_readable.is_valid());
  Load(not_readable.get());
  auto* p = static_cast<uint8_t*>(
      ::mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 0x5a, kPage);
  ASSERT_EQ(::mprotect(p + kPage, kPage, PROT_NONE), 0);
  std::vector<uint8_t> buf(2 * kPage, 0);
  // process_vm_readv's count: it stops at the PROT_NONE page the mem file would read.
  EXPECT_EQ(snapshot_.ReadMemory(reinterpret_cast<uint64_t>(p), buf.data(), buf.size()), kPage);
  EXPECT_EQ(buf[kPage - 1], 0x5a);
  EXPECT_EQ(snapshot_.ReadMemory(reinterpret_cast<uint64_t>(p) + kPage, buf.data(), 10), -EFAULT);
  ::munmap(p, 2 * kPage);
}

TEST_F(SelfSnapshotTest, MappingsAndProcessInfoAreThisProcesss) {
  int local = 0;
  size_t i = FindMapping(snapshot_, reinterpret_cast<uint64_t>(&local));
  ASSERT_NE(i, SIZE_MAX);
  EXPECT_EQ(snapshot_.mapping(i).path, "[stack]");
  EXPECT_EQ(snapshot_.process().pid, ::getpid());
  EXPECT_EQ(snapshot_.process().ppid, ::getppid());
  uint8_t flags = 0;
  uint64_t page = reinterpret_cast<uint64_t>(&local) & ~uint64_t{4095};
  ASSERT_EQ(snapshot_.QueryPages(page, 1, &flags), 0);
  EXPECT_TRUE(flags & kPagePresent);
  EXPECT_FALSE(flags & kPageFileOrSharedAnon);  // a private anonymous page
}

// --- mappings and their VmFlags from /proc/self/smaps ---

class SelfSnapshotSmapsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    smaps_.reset(::open("/proc/self/smaps", O_RDONLY | O_CLOEXEC));
    filter_.reset(::open("/proc/self/coredump_filter", O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(smaps_.is_valid());
    ASSERT_TRUE(filter_.is_valid());
  }
  // Loads with `capacity` bytes of text and room for `max_mappings`.
  int Load(size_t capacity, size_t max_mappings, bool* truncated) {
    text_.assign(capacity, '\0');
    mappings_.assign(max_mappings, MappingSnapshot{});
    SelfSnapshot::Resources r;
    r.smaps_fd = smaps_.get();
    r.coredump_filter_fd = filter_.get();
    r.maps_text = text_.data();
    r.maps_capacity = text_.size();
    r.mappings = mappings_.data();
    r.max_mappings = mappings_.size();
    snapshot_.Configure(r);
    return snapshot_.Load(truncated);
  }
  const MappingSnapshot* At(const void* p) const {
    size_t i = FindMapping(snapshot_, reinterpret_cast<uint64_t>(p));
    return i == SIZE_MAX ? nullptr : &snapshot_.mapping(i);
  }
  ScopedFd smaps_, filter_;
  std::vector<char> text_;
  std::vector<MappingSnapshot> mappings_;
  SelfSnapshot snapshot_;
};

TEST_F(SelfSnapshotSmapsTest, DontDumpAndDeviceMappingsAreMarked) {
  // Three pages; the middle one DONTDUMP splits the mapping in three.
  auto* p = static_cast<char*>(
      ::mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  ASSERT_EQ(::madvise(p + kPage, kPage, MADV_DONTDUMP), 0);
  bool truncated = true;
  ASSERT_EQ(Load(1 << 20, 4096, &truncated), 0);
  EXPECT_FALSE(truncated);
  ASSERT_NE(At(p + kPage), nullptr);
  EXPECT_TRUE(At(p + kPage)->dont_dump);
  EXPECT_TRUE(At(p + kPage)->never_dumped());
  EXPECT_EQ(At(p + kPage)->start, reinterpret_cast<uint64_t>(p + kPage));
  EXPECT_EQ(At(p + kPage)->size(), kPage);
  ASSERT_NE(At(p), nullptr);
  EXPECT_FALSE(At(p)->never_dumped());
  EXPECT_FALSE(At(p + 2 * kPage)->never_dumped());
  int local = 0;
  EXPECT_FALSE(At(&local)->never_dumped());  // the stack
  // [vvar] is the kernel's own device memory: dd, io and pf.
  for (size_t i = 0; i < snapshot_.mapping_count(); ++i) {
    const MappingSnapshot& m = snapshot_.mapping(i);
    if (m.path == "[vvar]") {
      EXPECT_TRUE(m.dont_dump && m.io && m.pfn_map);
    }
  }
  ::munmap(p, 3 * kPage);
}

TEST_F(SelfSnapshotSmapsTest, TheMappingsAreThoseOfProcSelfMaps) {
  bool truncated = true;
  ASSERT_EQ(Load(1 << 20, 4096, &truncated), 0);
  auto maps = ReadMaps(::getpid());
  ASSERT_THAT(maps, IsOk());
  // Read twice: the mappings may differ where the test framework allocated
  // in between, so compare the ones that are in both.
  size_t same = 0;
  for (const MemoryMapping& m : *maps) {
    size_t i = FindMapping(snapshot_, m.start);
    if (i == SIZE_MAX || snapshot_.mapping(i).start != m.start) continue;
    const MappingSnapshot& s = snapshot_.mapping(i);
    if (s.end == m.end) {
      EXPECT_EQ(s.path, m.path);
      EXPECT_EQ(s.inode, m.inode);
      EXPECT_EQ(s.offset, m.offset);
      ++same;
    }
  }
  EXPECT_GE(same + 4, maps->size());
}

TEST_F(SelfSnapshotSmapsTest, ALineLongerThanTheWindowIsCutNotMisread) {
  // A file whose path is longer than the window (a quarter of 8 KiB), mapped
  // low so that it comes first, then a DONTDUMP page: the file's maps line
  // is kept cut, and the flags after it go to the page, not to the file.
  ScopedTempDir dir("cppdiag-long");
  std::string path = dir.path();
  while (path.size() < 3000) {
    path += "/" + std::string(200, 'd');
    ASSERT_EQ(::mkdir(path.c_str(), 0700), 0);
  }
  path += "/file";
  ScopedFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.is_valid());
  ASSERT_EQ(::ftruncate(fd.get(), 2 * kPage), 0);
  auto* low = reinterpret_cast<char*>(uintptr_t{0x10000000});
  void* p = ::mmap(low, 2 * kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd.get(), 0);
  ASSERT_EQ(p, low);
  void* q = ::mmap(low + 2 * kPage, kPage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_EQ(q, low + 2 * kPage);
  ASSERT_EQ(::madvise(q, kPage, MADV_DONTDUMP), 0);
  bool truncated = false;
  ASSERT_EQ(Load(8192, 64, &truncated), 0);
  const MappingSnapshot* file = At(low);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->size(), 2 * kPage);
  EXPECT_GT(file->path.size(), 1000u);
  EXPECT_LT(file->path.size(), path.size());
  EXPECT_EQ(path.substr(0, file->path.size()), file->path);
  EXPECT_FALSE(file->never_dumped());
  const MappingSnapshot* dd = At(q);
  ASSERT_NE(dd, nullptr);
  EXPECT_TRUE(dd->dont_dump);
  ::munmap(low, 3 * kPage);
}

TEST_F(SelfSnapshotSmapsTest, TooManyMappingsForTheRoomIsTruncated) {
  bool truncated = false;
  ASSERT_EQ(Load(1 << 20, 4, &truncated), 0);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(snapshot_.mapping_count(), 4u);
  ASSERT_EQ(Load(2048, 4096, &truncated), 0);  // 1.5 KiB for the maps lines
  EXPECT_TRUE(truncated);
  EXPECT_GT(snapshot_.mapping_count(), 0u);
}

TEST_F(SelfSnapshotSmapsTest, TheCoredumpFilterIsReadAtEachLoad) {
  char saved[32] = {};
  ASSERT_GT(::pread(filter_.get(), saved, sizeof saved - 1, 0), 0);
  bool truncated = false;
  ASSERT_EQ(::pwrite(filter_.get(), "0x7", 3, 0), 3);
  ASSERT_EQ(Load(1 << 20, 4096, &truncated), 0);
  EXPECT_EQ(snapshot_.process().coredump_filter, 0x7u);
  ASSERT_EQ(::pwrite(filter_.get(), "0x33", 4, 0), 4);
  ASSERT_EQ(snapshot_.Load(&truncated), 0);
  EXPECT_EQ(snapshot_.process().coredump_filter, 0x33u);
  ASSERT_GT(::pwrite(filter_.get(), saved, std::strlen(saved), 0), 0);
}

TEST(VmFlagsTest, ParsesTheFlagsTheDumpNeeds) {
  MappingSnapshot m;
  ASSERT_TRUE(ParseVmFlagsLine("VmFlags: rd wr mr mw me ac sd dd ", &m));
  EXPECT_TRUE(m.dont_dump);
  EXPECT_FALSE(m.io || m.pfn_map || m.hugetlb);
  ASSERT_TRUE(ParseVmFlagsLine("VmFlags: rd mr pf io de dd", &m));
  EXPECT_TRUE(m.dont_dump && m.io && m.pfn_map);
  ASSERT_TRUE(ParseVmFlagsLine("VmFlags: rd wr sh mr mw me ms de ht", &m));
  EXPECT_TRUE(m.hugetlb);
  EXPECT_FALSE(m.dont_dump || m.io || m.pfn_map);
  EXPECT_FALSE(ParseVmFlagsLine("Rss:                 128 kB", &m));
  EXPECT_TRUE(m.hugetlb);  // unchanged
}

TEST(VmFlagsTest, CoredumpFilterValues) {
  EXPECT_EQ(ParseCoredumpFilter("00000033\n"), 0x33u);
  EXPECT_EQ(ParseCoredumpFilter("000001ff\n"), 0x1ffu);
  EXPECT_EQ(ParseCoredumpFilter(""), kDefaultCoredumpFilter);
  EXPECT_EQ(ParseCoredumpFilter("zz"), kDefaultCoredumpFilter);
  EXPECT_EQ(ParseCoredumpFilter("123456789"), kDefaultCoredumpFilter);
}

}  // namespace
}  // namespace cppdiag::dump
