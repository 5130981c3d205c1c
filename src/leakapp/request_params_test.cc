#include "leakapp/request_params.h"

#include <gtest/gtest.h>

namespace leakapp {
namespace {

std::string BadParameter(const std::variant<LeakParams, ParamError>& r) {
  auto* e = std::get_if<ParamError>(&r);
  return e == nullptr ? "" : e->parameter;
}

TEST(ParseLeakParams, DefaultsWhenEmpty) {
  auto r = ParseLeakParams({});
  ASSERT_TRUE(std::holds_alternative<LeakParams>(r));
  const auto& p = std::get<LeakParams>(r);
  EXPECT_EQ(p.chunk_kb, 1024u);
  EXPECT_EQ(p.interval_ms, 100u);
  EXPECT_EQ(p.max_mb, 0u);
  EXPECT_EQ(p.pattern, LeakPattern::kVector);
}

TEST(ParseLeakParams, ReadsEveryParameter) {
  auto r = ParseLeakParams(
      {{"chunkKb", "64"}, {"intervalMs", "0"}, {"maxMb", "5"}, {"pattern", "cycle"}});
  ASSERT_TRUE(std::holds_alternative<LeakParams>(r));
  const auto& p = std::get<LeakParams>(r);
  EXPECT_EQ(p.chunk_kb, 64u);
  EXPECT_EQ(p.interval_ms, 0u);
  EXPECT_EQ(p.max_mb, 5u);
  EXPECT_EQ(p.pattern, LeakPattern::kCycle);
}

TEST(ParseLeakParams, NamesTheBadParameter) {
  EXPECT_EQ(BadParameter(ParseLeakParams({{"chunkKb", "abc"}})), "chunkKb");
  EXPECT_EQ(BadParameter(ParseLeakParams({{"chunkKb", "0"}})), "chunkKb");
  EXPECT_EQ(BadParameter(ParseLeakParams({{"chunkKb", "99999999999"}})), "chunkKb");
  EXPECT_EQ(BadParameter(ParseLeakParams({{"intervalMs", "-1"}})), "intervalMs");
  EXPECT_EQ(BadParameter(ParseLeakParams({{"maxMb", "x"}})), "maxMb");
  EXPECT_EQ(BadParameter(ParseLeakParams({{"maxMb", ""}})), "maxMb");
  EXPECT_EQ(BadParameter(ParseLeakParams({{"pattern", "nope"}})), "pattern");
  EXPECT_EQ(BadParameter(ParseLeakParams({{"chunkkb", "1"}})), "chunkkb");
}

TEST(ParseCrashParams, AcceptsTheThreeKinds) {
  for (auto [name, kind] :
       {std::pair{"segv", CrashKind::kSegv}, std::pair{"abort", CrashKind::kAbort},
        std::pair{"oom", CrashKind::kOom}}) {
    auto r = ParseCrashParams({{"kind", name}});
    ASSERT_TRUE(std::holds_alternative<CrashKind>(r)) << name;
    EXPECT_EQ(std::get<CrashKind>(r), kind);
  }
}

TEST(ParseCrashParams, RejectsMissingAndUnknownKinds) {
  for (const QueryParams& q : {QueryParams{}, QueryParams{{"kind", "nope"}}}) {
    auto r = ParseCrashParams(q);
    ASSERT_TRUE(std::holds_alternative<ParamError>(r));
    EXPECT_EQ(std::get<ParamError>(r).parameter, "kind");
  }
}

}  // namespace
}  // namespace leakapp
