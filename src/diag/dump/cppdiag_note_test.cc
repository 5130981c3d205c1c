#include "diag/dump/cppdiag_note.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace cppdiag::dump {
namespace {

template <typename T>
T At(const uint8_t* p, size_t off) {
  T v;
  std::memcpy(&v, p + off, sizeof v);
  return v;
}

TEST(CppdiagNoteTest, LayoutIsTheDocumentedOne) {
  CppdiagInfo info;
  info.unix_time_sec = 1700000123;
  info.unix_time_nsec = 456;
  info.pid = 321;
  info.signal = 11;
  info.dump_type = DumpTypeNumber(DumpType::kFull);
  info.cgroup_version = 1;
  info.threads = 9;
  info.cgroup_usage_bytes = 1000;
  info.cgroup_limit_bytes = 2000;
  info.threads_not_captured = 2;
  CopyReason("crash", &info);
  uint8_t d[kCppdiagInfoSize];
  EncodeCppdiagInfo(info, d);
  EXPECT_EQ(At<uint32_t>(d, 0), 1u);
  EXPECT_EQ(At<uint32_t>(d, 4), 128u);
  EXPECT_EQ(At<int64_t>(d, 8), 1700000123);
  EXPECT_EQ(At<uint32_t>(d, 16), 456u);
  EXPECT_EQ(At<int32_t>(d, 20), 321);
  EXPECT_EQ(At<int32_t>(d, 24), 11);
  EXPECT_EQ(At<uint32_t>(d, 28), 4u);
  EXPECT_EQ(At<uint32_t>(d, 32), 1u);
  EXPECT_EQ(At<uint32_t>(d, 36), 9u);
  EXPECT_EQ(At<uint64_t>(d, 40), 1000u);
  EXPECT_EQ(At<uint64_t>(d, 48), 2000u);
  EXPECT_EQ(At<uint32_t>(d, 56), 2u);
  EXPECT_EQ(At<uint32_t>(d, 60), 0u);
  EXPECT_STREQ(reinterpret_cast<const char*>(d + 64), "crash");
}

TEST(CppdiagNoteTest, DotNetDumpTypeNumbers) {
  EXPECT_EQ(DumpTypeNumber(DumpType::kMini), 1u);
  EXPECT_EQ(DumpTypeNumber(DumpType::kHeap), 2u);
  EXPECT_EQ(DumpTypeNumber(DumpType::kTriage), 3u);
  EXPECT_EQ(DumpTypeNumber(DumpType::kFull), 4u);
  EXPECT_STREQ(DumpTypeName(DumpType::kTriage), "triage");
}

TEST(CppdiagNoteTest, LongReasonIsCutAndTerminated) {
  CppdiagInfo info;
  std::string reason(200, 'r');
  CopyReason(reason.c_str(), &info);
  EXPECT_EQ(strlen(info.reason), sizeof info.reason - 1);
  uint8_t d[kCppdiagInfoSize];
  EncodeCppdiagInfo(info, d);
  CppdiagInfo back;
  ASSERT_TRUE(DecodeCppdiagInfo(d, &back));
  EXPECT_EQ(std::string(back.reason), std::string(63, 'r'));
}

TEST(CppdiagNoteTest, DecodeRejectsShortAndAcceptsLongerVersions) {
  uint8_t d[kCppdiagInfoSize];
  CppdiagInfo info;
  info.pid = 5;
  EncodeCppdiagInfo(info, d);
  EXPECT_FALSE(DecodeCppdiagInfo(std::span<const uint8_t>(d, 32), &info));
  std::vector<uint8_t> v2(d, d + sizeof d);
  v2.resize(160, 0xee);  // a later version appends fields
  uint32_t version = 2, size = 160;
  std::memcpy(v2.data(), &version, 4);
  std::memcpy(v2.data() + 4, &size, 4);
  CppdiagInfo back;
  ASSERT_TRUE(DecodeCppdiagInfo(v2, &back));
  EXPECT_EQ(back.version, 2u);
  EXPECT_EQ(back.pid, 5);
}

}  // namespace
}  // namespace cppdiag::dump
