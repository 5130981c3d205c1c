// dump analyze on dumps of the real leakapp after each leak pattern (32 MiB
// of it, in 1 MiB rounds; the heap profiler samples every 512 KiB): heapstat
// must name the pattern's function (LeakIntoVector, LeakIntoCache,
// LeakThroughCycle, LeakIntoString) in its first stack, and heap types must
// show the cycle pattern's type (its make_shared blocks, which carry a
// vtable: std::_Sp_counted_ptr_inplace<leakapp::CycleNode, ...>).
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

  AnalyzeRun run = AnalyzeJson(core, {"heapstat 3", "heap types 10"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.outputs.size(), 2u);
  const json& stacks = run.outputs[0]["stacks"];
  ASSERT_FALSE(stacks.empty()) << run.outputs[0];
  EXPECT_TRUE(Names(stacks[0]["frames"], GetParam().function)) << stacks[0].dump(1);
  EXPECT_GE(stacks[0]["estimated_bytes"].get<double>(), 16.0 * (1 << 20)) << stacks[0];

  const json& types = run.outputs[1];
  EXPECT_TRUE(types["warnings"].empty()) << types;
  if (std::string(GetParam().name) == "cycle") {
    // Two nodes a round, 32 rounds: 64 control blocks, each a CycleNode.
    uint64_t nodes = 0;
    for (const json& g : types["groups"]) {
      if (g.value("type", "").find("_Sp_counted_ptr_inplace<leakapp::CycleNode") !=
          std::string::npos) {
        nodes += g["count"].get<uint64_t>();
      }
    }
    EXPECT_EQ(nodes, 64u) << types.dump(1);
  }
}

INSTANTIATE_TEST_SUITE_P(Patterns, LeakappDumpTest,
                         ::testing::Values(Pattern{"vector", "LeakIntoVector"},
                                           Pattern{"cache", "LeakIntoCache"},
                                           Pattern{"cycle", "LeakThroughCycle"},
                                           Pattern{"string", "LeakIntoString"}),
                         [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace cppdiag::analyze_test
