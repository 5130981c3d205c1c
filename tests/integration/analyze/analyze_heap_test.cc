// dump analyze's glibc heap commands on cores of heap_target, whose heap is
// known (heap_target.cc): cppdiag's full and heap dumps, the kernel's core
// (coredump_filter 0x37) and gdb's gcore of the same program must all show
// exactly its objects, by vtable type and by size.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "analyze_support.h"
#include "support/scoped_core_pattern.h"
#include "support/subprocess.h"

namespace cppdiag::analyze_test {
namespace {

namespace fs = std::filesystem;
using cppdiag::testing::BuiltBinary;
using cppdiag::testing::Subprocess;
using cppdiag::testing::SubprocessOptions;
using nlohmann::json;

uint64_t CountOf(const json& types, const std::string& key, const json& value) {
  for (const json& g : types) {
    if (g.contains(key) && g[key] == value) return g["count"].get<uint64_t>();
  }
  return 0;
}

// Symbols hidden: libc's debug file (libc6-dbg) is looked for in an empty
// directory, so main_arena must be found by its shape.
enum class LibcSymbols { kInstalled, kHidden };

void ExpectTheKnownHeap(const std::string& core, LibcSymbols symbols) {
  SCOPED_TRACE(core + (symbols == LibcSymbols::kHidden ? " (libc6-dbg hidden)" : ""));
  TempDir no_debug_files;
  std::vector<std::string> args;
  if (symbols == LibcSymbols::kHidden) args = {"--debug-dir", no_debug_files.path()};
  AnalyzeRun run =
      AnalyzeJson(core, {"heap", "heap types 100000", "heap leaked 100000", "modules"}, args);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.outputs.size(), 4u);
  const json& heap = run.outputs[0];
  EXPECT_TRUE(heap["warnings"].empty()) << heap["warnings"].dump(2);
  EXPECT_GE(heap["arenas"].size(), 2u) << "the Gadget thread's arena";
  bool libc_debug_info = false;
  for (const json& m : run.outputs[3]) {
    if (m["name"].get<std::string>().starts_with("libc.so")) libc_debug_info = m["debug_info"];
  }
  if (symbols == LibcSymbols::kHidden) {
    EXPECT_FALSE(libc_debug_info) << run.outputs[3].dump(1);
    EXPECT_NE(heap["found_by"].get<std::string>().find("shape"), std::string::npos) << heap;
    EXPECT_FALSE(heap.contains("mp_n_mmaps")) << "mp_ is a local symbol too";
  } else {
    ASSERT_TRUE(libc_debug_info) << "libc6-dbg is installed by scripts/setup.sh";
    EXPECT_NE(heap["found_by"].get<std::string>().find("symbols"), std::string::npos) << heap;
    EXPECT_EQ(heap["mmapped"], heap["mp_n_mmaps"]);
  }
  EXPECT_GE(heap["mmapped"].get<uint64_t>(), 5u);
  const json& main = heap["arenas"][0];
  EXPECT_TRUE(main["main"].get<bool>());
  // 50 of the 120-byte buffers were freed: 7 to the tcache, the rest to a
  // fastbin (or, consolidated, to a bin).
  EXPECT_GE(main["tcache"].get<uint64_t>(), 7u);
  EXPECT_GE(main["free"].get<uint64_t>(), 50u);

  EXPECT_TRUE(run.outputs[1]["warnings"].empty());
  const json& types = run.outputs[1]["groups"];
  EXPECT_EQ(CountOf(types, "type", "(anonymous namespace)::Widget"), 3000u) << types.dump(1);
  EXPECT_EQ(CountOf(types, "type", "(anonymous namespace)::Gadget"), 500u);
  EXPECT_EQ(CountOf(types, "chunk_size", (1 << 20) + 4096), 5u) << "the 1 MiB buffers";
  EXPECT_GE(CountOf(types, "chunk_size", 128), 50u) << "the 120-byte buffers still in use";
  // No Widget or Gadget is counted by size: their chunk sizes hold other things only.
  EXPECT_LT(CountOf(types, "chunk_size", 1520), 10u);
  EXPECT_LT(CountOf(types, "chunk_size", 1808), 10u);
  EXPECT_EQ(CountOf(types, "type", "(anonymous namespace)::Leaky"), 200u);

  // Exactly the Leaky ring is leaked: no live object, nothing else.
  const json& leaked = run.outputs[2];
  EXPECT_EQ(leaked["leaked"], 200) << leaked.dump(1);
  ASSERT_EQ(leaked["groups"].size(), 1u) << leaked.dump(1);
  EXPECT_EQ(leaked["groups"][0]["type"], "(anonymous namespace)::Leaky");
}

// The same heap with libc's symbols and without them.
void ExpectTheKnownHeap(const std::string& core) {
  ExpectTheKnownHeap(core, LibcSymbols::kInstalled);
  ExpectTheKnownHeap(core, LibcSymbols::kHidden);
}

class HeapDumpTest : public ::testing::TestWithParam<const char*> {};

TEST_P(HeapDumpTest, OurDumpShowsTheKnownHeap) {
  TempDir dir;
  const std::string core = dir.path() + "/core";
  std::string out =
      cppdiag::testing::RunToCompletion({BuiltBinary("heap_target"), "dump", GetParam(), core});
  ASSERT_NE(out.find("DUMP rc=0"), std::string::npos) << out;
  ExpectTheKnownHeap(core);

  // heap who: a Widget (its address from gdb) is held by g_widgets, in the
  // executable's data.
  std::string gdb = cppdiag::testing::RunToCompletion(
      {"/usr/bin/gdb", "-batch", "-nx", "-ex",
       "print (void*)'(anonymous namespace)::g_widgets'[17]", BuiltBinary("heap_target"), core});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(gdb, m, std::regex(R"(\(void \*\) (0x[0-9a-f]+))"))) << gdb;
  AnalyzeRun who = AnalyzeJson(core, {"heap who " + m[1].str()});
  ASSERT_EQ(who.exit_code, 0) << who.err;
  const json& w = who.outputs[0];
  EXPECT_EQ(w["leaked"], false);
  EXPECT_EQ(w["size"], 1504);
  ASSERT_EQ(w["chain"].size(), 1u) << w.dump(1);
  EXPECT_NE(w["chain"][0]["root"].get<std::string>().find("g_widgets"), std::string::npos)
      << w.dump(1);
}

INSTANTIATE_TEST_SUITE_P(HeapTypes, HeapDumpTest, ::testing::Values("full", "heap"));

TEST(AnalyzeHeapTest, TheKernelsCoreShowsTheKnownHeap) {
  cppdiag::testing::ScopedCorePattern pattern;
  if (!pattern.ok()) GTEST_SKIP() << pattern.why_not();
  TempDir dir;
  Subprocess p(SubprocessOptions{.argv = {BuiltBinary("heap_target"), "abort"}, .cwd = dir.path()});
  auto end = p.Wait(std::chrono::seconds(120));
  ASSERT_TRUE(end && end->core_dumped) << (end ? end->ToString() : "timed out");
  std::string core;
  for (const auto& e : fs::directory_iterator(dir.path())) core = e.path();
  ASSERT_FALSE(core.empty());
  ExpectTheKnownHeap(core);
}

TEST(AnalyzeHeapTest, GdbsGcoreShowsTheKnownHeap) {
  TempDir dir;
  const std::string fifo = dir.path() + "/go", core = dir.path() + "/gcore";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Subprocess p(SubprocessOptions{.argv = {BuiltBinary("heap_target"), "wait", fifo}});
  ASSERT_TRUE(p.WaitForOutput("READY", std::chrono::seconds(60))) << p.Stderr();
  std::string gdb = cppdiag::testing::RunToCompletion(
      {"/usr/bin/gdb", "-batch", "-nx", "-p", std::to_string(p.pid()), "-ex", "gcore " + core});
  ASSERT_TRUE(fs::exists(core)) << gdb;
  ExpectTheKnownHeap(core);
}

TEST(AnalyzeHeapTest, AMiniDumpHoldsNoHeap) {
  TempDir dir;
  const std::string core = dir.path() + "/core";
  std::string out =
      cppdiag::testing::RunToCompletion({BuiltBinary("heap_target"), "dump", "mini", core});
  ASSERT_NE(out.find("DUMP rc=0"), std::string::npos) << out;
  for (const char* cmd : {"heap", "heap types"}) {
    cppdiag::testing::CliRun r = cppdiag::testing::Cppdiag({"dump", "analyze", core, "-c", cmd});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("this dump holds no heap (type mini); take a heap or full dump"),
              std::string::npos)
        << r.err;
  }
}

}  // namespace
}  // namespace cppdiag::analyze_test
