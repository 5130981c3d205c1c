#include "diag/ipc/heap_snapshot.h"
#include "support/status_matchers.h"

#include <gtest/gtest.h>

namespace cppdiag::ipc {
namespace {

using ::cppdiag::testing::IsOk;

TEST(HeapSnapshotJson, RoundTripsWithPcsAsExactNumbers) {
  heap::HeapProfile p;
  p.sample_period_bytes = 65536;
  p.time_unix_ns = 1763900000123456789;
  p.total_allocated_bytes = 1u << 30;
  p.total_freed_bytes = 1u << 29;
  p.stacks = {{{0x7fffffffe123, 0xffffffffffffff01}, 2, 100, 2048.5, 131072.25}};
  p.mappings = {{0x555555554000, 0x555555600000, 0x1000, "/usr/bin/leakapp", "ab12"}};
  nlohmann::json j = HeapProfileToJson(p);
  EXPECT_TRUE(j["stacks"][0]["pcs"][1].is_number_unsigned());
  auto back = HeapProfileFromJson(nlohmann::json::parse(j.dump()));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->sample_period_bytes, 65536u);
  EXPECT_EQ(back->time_unix_ns, p.time_unix_ns);
  EXPECT_EQ(back->total_freed_bytes, p.total_freed_bytes);
  ASSERT_EQ(back->stacks.size(), 1u);
  EXPECT_EQ(back->stacks[0].pcs, p.stacks[0].pcs);
  EXPECT_EQ(back->stacks[0].estimated_bytes, 131072.25);
  ASSERT_EQ(back->mappings.size(), 1u);
  EXPECT_EQ(back->mappings[0].path, "/usr/bin/leakapp");
  EXPECT_EQ(back->mappings[0].offset, 0x1000u);
}

TEST(HeapSnapshotJson, AProfilerThatIsOffIsAnEmptyReply) {
  auto back = HeapProfileFromJson(HeapProfileToJson(heap::HeapProfile{}));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->sample_period_bytes, 0u);
  EXPECT_TRUE(back->stacks.empty());
}

TEST(HeapSnapshotJson, AFieldOfTheWrongTypeIsOneLineError) {
  auto bad = HeapProfileFromJson(nlohmann::json{{"stacks", {{{"pcs", "nope"}}}}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("malformed heap snapshot reply"), std::string::npos);
}

}  // namespace
}  // namespace cppdiag::ipc
