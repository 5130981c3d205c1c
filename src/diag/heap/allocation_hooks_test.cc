#include "diag/heap/allocation_hooks.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

namespace cppdiag::heap {
namespace {

class HardLimit : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HooksActive()) GTEST_SKIP() << "sanitizer build: the sanitizer owns the allocator";
  }
  void TearDown() override { SetHeapHardLimit(0); }
};

TEST_F(HardLimit, AccountsLiveBlocks) {
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

}  // namespace
}  // namespace cppdiag::heap
