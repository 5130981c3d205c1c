#include "diag/config.h"
#include "support/status_matchers.h"

#include <gtest/gtest.h>

namespace cppdiag {
namespace {

using ::cppdiag::testing::IsOk;

TEST(DiagConfig, DefaultsMatchTheDesign) {
  auto c = ParseDiagConfig({{"TMPDIR", "/var/tmp"}});
  ASSERT_THAT(c, IsOk());
  EXPECT_TRUE(c->enable_diagnostics);
  EXPECT_FALSE(c->enable_dump_on_crash);
  EXPECT_EQ(c->dump_type, DumpType::kHeap);
  EXPECT_EQ(c->dump_name, "/var/tmp/core.%e.%p.%t");
  EXPECT_EQ(c->dump_dir, "/var/tmp");
  EXPECT_FALSE(c->heap_hard_limit.has_value());
  EXPECT_FALSE(c->oom_dump_threshold.has_value());
  EXPECT_EQ(c->heap_sample_bytes, 524288u);
}

TEST(DiagConfig, ReadsEveryVariable) {
  auto c = ParseDiagConfig({{"CPPDIAG_ENABLE_DIAGNOSTICS", "0"},
                            {"CPPDIAG_ENABLE_DUMP_ON_CRASH", "1"},
                            {"CPPDIAG_DUMP_TYPE", "4"},
                            {"CPPDIAG_DUMP_NAME", "/app/dumps/core.%e.%p.%r"},
                            {"CPPDIAG_HEAP_HARD_LIMIT", "512M"},
                            {"CPPDIAG_OOM_DUMP_THRESHOLD", "85"},
                            {"CPPDIAG_HEAP_SAMPLE_BYTES", "0"}});
  ASSERT_THAT(c, IsOk());
  EXPECT_FALSE(c->enable_diagnostics);
  EXPECT_TRUE(c->enable_dump_on_crash);
  EXPECT_EQ(c->dump_type, DumpType::kFull);
  EXPECT_EQ(c->dump_dir, "/app/dumps");
  ASSERT_TRUE(c->heap_hard_limit.has_value());
  EXPECT_EQ(c->heap_hard_limit->bytes, 512u << 20);
  EXPECT_DOUBLE_EQ(*c->oom_dump_threshold, 85.0);
  EXPECT_EQ(c->heap_sample_bytes, 0u);
}

TEST(DiagConfig, HeapLimitDefaultAndZeroTurnsItOff) {
  auto pct = *ParseSizeOrPercent("75%");
  EXPECT_TRUE(ParseDiagConfig({}, pct)->heap_hard_limit->is_percent);
  EXPECT_FALSE(ParseDiagConfig({{"CPPDIAG_HEAP_HARD_LIMIT", "0"}}, pct)->heap_hard_limit);
}

TEST(DiagConfig, MalformedValuesNameTheVariable) {
  for (auto [name, value] : std::initializer_list<std::pair<const char*, const char*>>{
           {"CPPDIAG_DUMP_TYPE", "huge"},
           {"CPPDIAG_ENABLE_DUMP_ON_CRASH", "maybe"},
           {"CPPDIAG_HEAP_HARD_LIMIT", "lots"},
           {"CPPDIAG_OOM_DUMP_THRESHOLD", "120"},
           {"CPPDIAG_HEAP_SAMPLE_BYTES", "-1"}}) {
    auto c = ParseDiagConfig({{name, value}});
    ASSERT_FALSE(c.ok()) << name;
    EXPECT_EQ(c.error().message().rfind(name, 0), 0u) << c.error().message();
  }
}

TEST(DumpType, AcceptsNamesAndDotNetNumbers) {
  EXPECT_EQ(*ParseDumpType("mini"), DumpType::kMini);
  EXPECT_EQ(*ParseDumpType("1"), DumpType::kMini);
  EXPECT_EQ(*ParseDumpType("2"), DumpType::kHeap);
  EXPECT_EQ(*ParseDumpType("3"), DumpType::kTriage);
  EXPECT_EQ(*ParseDumpType("4"), DumpType::kFull);
  EXPECT_STREQ(DumpTypeName(DumpType::kTriage), "triage");
  EXPECT_EQ(static_cast<int>(DumpType::kFull), 4) << ".NET's numbers";
}

}  // namespace
}  // namespace cppdiag
