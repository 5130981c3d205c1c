// dump analyze on dumps of the real leakapp after each leak pattern (32 MiB
// of it, in 1 MiB rounds; the heap profiler samples every 512 KiB): heapstat
// must name the pattern's function (LeakIntoVector, LeakIntoCache,
// LeakThroughCycle, LeakIntoString) in its first stack, and heap types must
// show the types of the patterns whose objects are C++ classes: the cycle
// pattern's make_shared blocks, which carry a vtable
// (std::_Sp_counted_ptr_inplace<leakapp::CycleNode, ...>), and the cache
// pattern's entries (leakapp::CacheEntry, a polymorphic class), each with
// its count (heap types lists every group: a small type is not in the top 10).
#include <gtest/gtest.h>

#include <string>

#include "analyze_support.h"
#include "leakapp_process.h"
#include "support/subprocess.h"

namespace cppdiag::analyze_test {
namespace {

using nlohmann::json;

struct Pattern {
  const char* name;
  const char* function;
  const char* type = nullptr;  // what heap types must name (a vtable's class), or none
  uint64_t objects = 0;        // how many of them: 32 rounds of the pattern
  bool exact_type = false;     // the group's type is `type` itself, not a name holding it
};

class LeakappDumpTest : public ::testing::TestWithParam<Pattern> {};

// Whether any function of `frames` (heapstat JSON) names `function`.
bool Names(const json& frames, const std::string& function) {
  for (const json& f : frames) {
    for (const json& fn : f["functions"]) {
      if (fn["function"].get<std::string>().find(function) != std::string::npos) return true;
    }
  }
  return false;
}

TEST_P(LeakappDumpTest, HeapstatNamesThePatternFirst) {
  if (cppdiag::testing::kSanitizerBuild) GTEST_SKIP() << "no glibc heap under a sanitizer";
  cppdiag::testing::LeakappProcess app;
  ASSERT_TRUE(app.WaitUntilReady()) << app.Output();
  auto r =
      app.Get(std::string("/triggerMemoryLeak?intervalMs=1&maxMb=32&pattern=") + GetParam().name);
  ASSERT_TRUE(r && r->status == 200) << app.Output();
  ASSERT_TRUE(app.WaitForLeakState("stopped")) << app.Output();
  TempDir dir;
  const std::string core = dir.path() + "/core";
  cppdiag::testing::CliRun dump = cppdiag::testing::Cppdiag(
      {"dump", "collect", "-p", std::to_string(app.pid()), "--type", "heap", "-o", core});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;

  AnalyzeRun run = AnalyzeJson(core, {"heapstat 3", "heap types 100000"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.outputs.size(), 2u);
  const json& stacks = run.outputs[0]["stacks"];
  ASSERT_FALSE(stacks.empty()) << run.outputs[0];
  EXPECT_TRUE(Names(stacks[0]["frames"], GetParam().function)) << stacks[0].dump(1);
  // A pattern may leak from more than one call site (the cycle's two nodes
  // fill their payloads on two lines: two stacks of about 16 MiB each), so
  // the estimate is summed over the top stacks that name it: 32 MiB leaked,
  // and 16 MiB is five standard deviations of the sampling below that.
  double estimated = 0;
  for (const json& s : stacks) {
    if (Names(s["frames"], GetParam().function)) estimated += s["estimated_bytes"].get<double>();
  }
  EXPECT_GE(estimated, 16.0 * (1 << 20)) << stacks.dump(1);

  const json& types = run.outputs[1];
  EXPECT_TRUE(types["warnings"].empty()) << types;
  if (GetParam().type != nullptr) {
    uint64_t objects = 0;
    for (const json& g : types["groups"]) {
      std::string type = g.value("type", "");
      if (GetParam().exact_type ? type == GetParam().type
                                : type.find(GetParam().type) != std::string::npos) {
        objects += g["count"].get<uint64_t>();
      }
    }
    EXPECT_EQ(objects, GetParam().objects) << types.dump(1);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Patterns, LeakappDumpTest,
    // cache: one CacheEntry a round; cycle: two nodes a round,
    // each a make_shared control block holding a CycleNode.
    ::testing::Values(Pattern{"vector", "LeakIntoVector"},
                      Pattern{"cache", "LeakIntoCache", "leakapp::CacheEntry", 32, true},
                      Pattern{"cycle", "LeakThroughCycle",
                              "_Sp_counted_ptr_inplace<leakapp::CycleNode", 64},
                      Pattern{"string", "LeakIntoString"}),
    [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace cppdiag::analyze_test
