#include "diag/dump/self_snapshot.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/scoped_fd.h"

namespace cppdiag::dump {
namespace {

constexpr size_t kPage = 4096;

class SelfSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    maps_.reset(::open("/proc/self/maps", O_RDONLY | O_CLOEXEC));
    pagemap_.reset(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
    text_.resize(1 << 20);
    mappings_.resize(4096);
    SelfSnapshot::Resources r;
    r.maps_fd = maps_.get();
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
  ScopedFd maps_, pagemap_;
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

}  // namespace
}  // namespace cppdiag::dump
