// cppdiag heap end to end for a program that knows nothing of cppdiag: a
// plain C program (tests/integration/heap_profiler/leaky.c, not linked with
// libcppdiag) run with LD_PRELOAD=libcppdiag_preload.so alone. Snapshot, leak
// 64 MiB (started and stopped by signals, so the leak happens only between
// the snapshots), snapshot, diff: the first stack is the C leak
// function and the estimated growth is within 20 % of what the program says
// it leaked.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>

#include "cli/heap/heap_view.h"
#include "cli/heap/pprof.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"
#include "support/subprocess.h"

namespace cppdiag::testing {
namespace {

using ::cppdiag::testing::IsOk;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// "leaked <bytes> total <bytes>" from leaky's stdout; 0 when absent.
uint64_t LeakedBytes(const std::string& out) {
  std::istringstream in(out);
  std::string word;
  while (in >> word) {
    if (word == "leaked") {
      uint64_t n = 0;
      in >> n;
      return n;
    }
  }
  return 0;
}

TEST(HeapDiffPreload, PlainCProgramDiffNamesItsLeakFunctionAndGrowth) {
  ScopedTempDir dir("cppdiag-heap-preload", fs::temp_directory_path().string());
  auto path = [&](const char* name) { return dir.Join(name); };

  // 64 KiB period: ~1000 samples over the leak, so 20 % is many sigmas.
  Subprocess leaky(
      {.argv = {HEAP_LEAKY_C, "serve"},
       .env = {{"LD_PRELOAD", CPPDIAG_PRELOAD_LIB}, {"CPPDIAG_HEAP_SAMPLE_BYTES", "65536"}}});
  ASSERT_TRUE(leaky.WaitForOutput("ready", 30s)) << leaky.Stdout() << leaky.Stderr();

  CliRun before =
      Cppdiag({"heap", "snapshot", "-p", std::to_string(leaky.pid()), "-o", path("before.pb.gz")});
  ASSERT_EQ(before.exit_code, 0) << before.err << leaky.Stderr();

  leaky.Signal(SIGUSR1);
  // 64 MiB (about 1000 samples), then stop: leaky says how far it has got.
  ASSERT_TRUE(leaky.WaitForOutput("so far " + std::to_string(64u << 20) + "\n", 120s))
      << leaky.Stdout() << leaky.Stderr();
  leaky.Signal(SIGUSR2);
  ASSERT_TRUE(leaky.WaitForOutput("leaked", 30s)) << leaky.Stdout() << leaky.Stderr();
  double leaked = static_cast<double>(LeakedBytes(leaky.Stdout()));
  ASSERT_GE(leaked, 8.0 * (1 << 20))
      << "the program leaked too little to measure: " << leaky.Stdout();

  CliRun after =
      Cppdiag({"heap", "snapshot", "-p", std::to_string(leaky.pid()), "-o", path("after.pb.gz")});
  ASSERT_EQ(after.exit_code, 0) << after.err;

  CliRun diff = Cppdiag({"heap", "diff", path("before.pb.gz"), path("after.pb.gz"), "--top", "5"});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  auto first = diff.out.find("\n#1  +");
  ASSERT_NE(first, std::string::npos) << diff.out;
  std::string first_line = diff.out.substr(first + 1, diff.out.find('\n', first + 1) - first - 1);
  EXPECT_NE(first_line.find("in leak_from_c"), std::string::npos) << diff.out;

  auto a = cli::pprof::ReadProfileFile(path("before.pb.gz"));
  auto b = cli::pprof::ReadProfileFile(path("after.pb.gz"));
  ASSERT_TRUE(a.ok() && b.ok());
  auto growth = cli::heap::Growth(*a, *b);
  ASSERT_THAT(growth, IsOk());
  double leak_growth = 0;
  for (const auto& s : *growth) {
    if (s.leaking_frame().function.find("leak_from_c") != std::string::npos) leak_growth += s.bytes;
  }
  EXPECT_NEAR(leak_growth, leaked, 0.2 * leaked) << diff.out;
}

}  // namespace
}  // namespace cppdiag::testing
