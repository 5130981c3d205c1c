#include "common/async_safe.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

namespace cppdiag {
namespace {

std::string Format(auto v, size_t size = kMaxDecimalChars) {
  char buf[kMaxDecimalChars + 8];
  std::memset(buf, 'x', sizeof buf);
  size_t n = FormatDecimal(v, buf, size);
  return n == 0 ? "(none)" : std::string(buf, n) + (buf[n] == '\0' ? "" : "(no NUL)");
}

TEST(AsyncSafe, FormatsEveryEdgeOfTheIntegerTypes) {
  EXPECT_EQ(Format(uint64_t{0}), "0");
  EXPECT_EQ(Format(UINT64_MAX), "18446744073709551615");
  EXPECT_EQ(Format(INT64_MAX), "9223372036854775807");
  EXPECT_EQ(Format(INT64_MIN), "-9223372036854775808");  // -INT64_MIN overflows naively
  EXPECT_EQ(Format(-1), "-1");
  EXPECT_EQ(Format(int64_t{12345}, 6), "12345");
  EXPECT_EQ(Format(int64_t{12345}, 5), "(none)");  // no room for the NUL
  EXPECT_EQ(Format(int64_t{-5}, 2), "(none)");
}

TEST(AsyncSafe, ParsesLeadingDigitsAndRefusesOverflow) {
  uint64_t v = 7;
  EXPECT_EQ(ParseDecimal("268435456\n", &v), 9u);
  EXPECT_EQ(v, 268435456u);
  EXPECT_EQ(ParseDecimal("18446744073709551615", &v), 20u);
  EXPECT_EQ(v, UINT64_MAX);
  v = 7;
  EXPECT_EQ(ParseDecimal("18446744073709551616", &v), 0u);
  EXPECT_EQ(ParseDecimal("max\n", &v), 0u);
  EXPECT_EQ(ParseDecimal("", &v), 0u);
  EXPECT_EQ(v, 7u);
}

TEST(AsyncSafe, ParsesHexInEitherCaseAndRefusesOverflow) {
  uint64_t v = 7;
  EXPECT_EQ(ParseHex("00000033\n", &v), 8u);  // a coredump_filter
  EXPECT_EQ(v, 0x33u);
  EXPECT_EQ(ParseHex("7fFFaB-", &v), 6u);
  EXPECT_EQ(v, 0x7fffabu);
  EXPECT_EQ(ParseHex("ffffffffffffffff", &v), 16u);
  EXPECT_EQ(v, UINT64_MAX);
  v = 7;
  EXPECT_EQ(ParseHex("10000000000000000", &v), 0u);
  EXPECT_EQ(ParseHex("xyz", &v), 0u);
  EXPECT_EQ(ParseHex("", &v), 0u);
  EXPECT_EQ(v, 7u);
}

TEST(AsyncSafe, ReadsSmallFilesWholeOrCut) {
  char path[] = "/tmp/cppdiag-async-safe-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "4096 rest\n", 10), 10);
  ::close(fd);
  char buf[8];
  EXPECT_EQ(ReadSmallFile(path, buf, sizeof buf), 7);  // cut to fit, NUL-terminated
  EXPECT_STREQ(buf, "4096 re");
  uint64_t v = 0;
  EXPECT_TRUE(ReadDecimalFile(path, &v));
  EXPECT_EQ(v, 4096u);
  ::unlink(path);
  EXPECT_EQ(ReadSmallFile(path, buf, sizeof buf), -ENOENT);
  EXPECT_FALSE(ReadDecimalFile(path, &v));
}

TEST(AsyncSafe, IdsComeFromTheKernel) {
  EXPECT_EQ(CurrentPid(), ::getpid());
  EXPECT_EQ(CurrentTid(), ::gettid());
  pid_t other = 0;
  std::thread([&] { other = CurrentTid(); }).join();
  EXPECT_NE(other, CurrentTid());
}

TEST(AsyncSafe, FutexWaitsForAWakeAndTimesOut) {
  std::atomic<uint32_t> word{0};
  EXPECT_EQ(FutexWait(&word, 1), EAGAIN);  // not the expected value: no sleep
  EXPECT_EQ(FutexWait(&word, 0, 1000000), ETIMEDOUT);
  std::thread waker([&] {
    word.store(1);
    FutexWake(&word, INT32_MAX);
  });
  while (word.load() == 0) FutexWait(&word, 0, 1000000000);
  waker.join();
  EXPECT_EQ(word.load(), 1u);
  uint64_t a = MonotonicNs(), b = MonotonicNs();
  EXPECT_LE(a, b);
  EXPECT_GT(RealtimeNs(), 1600000000ull * 1000000000ull);
}

TEST(AsyncSafe, ScopedMmapIsDoNotDumpAndUnmapsOnce) {
  ScopedMmap m = ScopedMmap::Anonymous(1 << 16, true);
  ASSERT_TRUE(m.ok());
  std::memset(m.get(), 1, m.size());
  // The kernel's own record of the advice: VmFlags "dd" in smaps, for the
  // mapping that holds it.
  std::ifstream smaps("/proc/self/smaps");
  auto addr = reinterpret_cast<unsigned long>(m.get());
  bool in = false, dd = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) in = lo <= addr && addr < hi;
    if (in && line.starts_with("VmFlags:")) dd = line.find(" dd") != std::string::npos;
  }
  EXPECT_TRUE(dd);
  ScopedMmap moved = std::move(m);
  EXPECT_FALSE(m.ok());
  EXPECT_TRUE(moved.ok());
  EXPECT_FALSE(ScopedMmap::Anonymous(0, false).ok());
}

}  // namespace
}  // namespace cppdiag
