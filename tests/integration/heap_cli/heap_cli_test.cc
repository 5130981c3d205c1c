// cppdiag heap end to end: the real leakapp with its sampling heap profiler
// (CPPDIAG_HEAP_SAMPLE_BYTES=64K), `cppdiag heap snapshot`, a leak of one
// pattern, a second snapshot, `cppdiag heap diff`: the first stack is the
// pattern's leaking function and the estimated growth is within 20 % of
// what leakapp says it leaked. Also: the files are pprof that protoc reads
// against the published schema, `heap report`, the HTML page, and the
// one-line errors.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/heap/heap_view.h"
#include "cli/heap/pprof.h"
#include "integration/leakapp/leakapp_process.h"
#include "support/status_matchers.h"
#include "support/subprocess.h"

namespace cppdiag::testing {
namespace {

using ::cppdiag::testing::IsOk;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kProfilerOff = "has its heap profiler off";

class HeapCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cppdiag-heap-cli-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) { return (dir_ / name).string(); }

  // Snapshots `app` into `name`; skips the test when its profiler is off
  // (a build where the sampling profiler has not landed).
  CliRun Snapshot(LeakappProcess& app, const std::string& name) {
    CliRun r = Cppdiag({"heap", "snapshot", "-p", std::to_string(app.pid()), "-o", Path(name)});
    return r;
  }

  fs::path dir_;
};

struct PatternCase {
  const char* pattern;
  const char* function;
};
void PrintTo(const PatternCase& c, std::ostream* os) { *os << c.pattern; }

class HeapDiffTest : public HeapCliTest, public ::testing::WithParamInterface<PatternCase> {};

TEST_P(HeapDiffTest, NamesThePatternsFunctionAndItsGrowth) {
  const PatternCase& c = GetParam();
  LeakappProcess app({.env = {{"CPPDIAG_HEAP_SAMPLE_BYTES", "65536"}}});
  ASSERT_TRUE(app.WaitUntilReady()) << app.Output();

  CliRun before = Snapshot(app, "before.pb.gz");
  if (before.exit_code != 0 && before.err.find(kProfilerOff) != std::string::npos) {
    GTEST_SKIP() << "the target's heap profiler is off (snapshot reply has sample period 0): "
                 << before.err;
  }
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(before.out.rfind("Wrote " + Path("before.pb.gz") + ": process ", 0), 0u) << before.out;

  // 32 chunks of 1 MiB: a power of two, so the string pattern's geometric
  // growth ends exactly at what was leaked.
  auto started = app.GetJson(std::string("/triggerMemoryLeak?pattern=") + c.pattern +
                             "&chunkKb=1024&intervalMs=20&maxMb=32");
  ASSERT_FALSE(started.is_null());
  ASSERT_TRUE(app.WaitForLeakState("stopped")) << app.Output();
  auto status = app.GetJson("/status");
  double leaked = status.value("leakedBytes", 0.0);
  ASSERT_EQ(leaked, 32.0 * 1024 * 1024) << status.dump();

  CliRun after = Snapshot(app, "after.pb.gz");
  ASSERT_EQ(after.exit_code, 0) << after.err;

  CliRun diff = Cppdiag({"heap", "diff", Path("before.pb.gz"), Path("after.pb.gz"), "--top", "5",
                         "--html", Path("growth.html")});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  // The first stack names the leaking function.
  auto first = diff.out.find("\n#1  +");
  ASSERT_NE(first, std::string::npos) << diff.out;
  std::string first_line = diff.out.substr(first + 1, diff.out.find('\n', first + 1) - first - 1);
  EXPECT_NE(first_line.find(std::string("in leakapp::") + c.function), std::string::npos)
      << diff.out;

  // The growth of the pattern's stacks, from the files, against what leaked.
  auto a = cli::pprof::ReadProfileFile(Path("before.pb.gz"));
  auto b = cli::pprof::ReadProfileFile(Path("after.pb.gz"));
  ASSERT_TRUE(a.ok() && b.ok());
  auto growth = cli::heap::Growth(*a, *b);
  ASSERT_THAT(growth, IsOk());
  double pattern_growth = 0;
  for (const auto& s : *growth) {
    if (s.leaking_frame().function.find(c.function) != std::string::npos) {
      pattern_growth += s.bytes;
    }
  }
  EXPECT_NEAR(pattern_growth, leaked, 0.2 * leaked) << diff.out;

  // The page: whole, self-contained, with the function in its data.
  std::string html = ReadAll(Path("growth.html"));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  EXPECT_EQ(html.find("<script src"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));
  EXPECT_NE(html.find(c.function), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Patterns, HeapDiffTest,
                         ::testing::Values(PatternCase{"vector", "LeakIntoVector"},
                                           PatternCase{"cache", "LeakIntoCache"},
                                           PatternCase{"cycle", "LeakThroughCycle"},
                                           PatternCase{"string", "LeakIntoString"}),
                         [](const auto& test_info) {
                           return std::string(test_info.param.pattern);
                         });

TEST_F(HeapCliTest, SnapshotIsAPrivatePprofFileThatProtocReadsAndReportShows) {
  LeakappProcess app({.env = {{"CPPDIAG_HEAP_SAMPLE_BYTES", "65536"}}});
  ASSERT_TRUE(app.WaitUntilReady()) << app.Output();
  ASSERT_FALSE(app.GetJson("/triggerMemoryLeak?pattern=vector&intervalMs=10&maxMb=8").is_null());
  ASSERT_TRUE(app.WaitForLeakState("stopped"));
  CliRun snap = Snapshot(app, "heap.pb.gz");
  if (snap.exit_code != 0 && snap.err.find(kProfilerOff) != std::string::npos) {
    GTEST_SKIP() << "the target's heap profiler is off: " << snap.err;
  }
  ASSERT_EQ(snap.exit_code, 0) << snap.err;

  struct stat st {};
  ASSERT_EQ(::stat(Path("heap.pb.gz").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // Refuses to overwrite, unless asked.
  CliRun again = Snapshot(app, "heap.pb.gz");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_EQ(again.err,
            "cppdiag: " + Path("heap.pb.gz") + " exists (use --overwrite to replace it)\n");
  CliRun over = Cppdiag({"heap", "snapshot", "-p", std::to_string(app.pid()), "-o",
                         Path("heap.pb.gz"), "--overwrite"});
  EXPECT_EQ(over.exit_code, 0) << over.err;

  // An independent reader: protoc against the published profile.proto.
  if (::access("/usr/bin/protoc", X_OK) == 0) {
    std::string cmd = "gzip -dc " + Path("heap.pb.gz") +
                      " | /usr/bin/protoc --proto_path=" CPPDIAG_SOURCE_DIR
                      "/tests/integration/heap_cli --decode=perftools.profiles.Profile "
                      "profile.proto > " +
                      Path("heap.txt") + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << ReadAll(Path("heap.txt"));
    std::string text = ReadAll(Path("heap.txt"));
    for (const char* expected : {"string_table: \"inuse_space\"", "string_table: \"inuse_objects\"",
                                 "string_table: \"space\"", "period: 65536", "has_functions: true",
                                 "LeakIntoVector", "leak_patterns.cc", "/leakapp\""}) {
      EXPECT_NE(text.find(expected), std::string::npos) << expected;
    }
  }

  CliRun report = Cppdiag({"heap", "report", Path("heap.pb.gz"), "--top", "3"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_NE(report.out.find("estimated live heap"), std::string::npos) << report.out;
  auto first = report.out.find("\n#1  ");
  ASSERT_NE(first, std::string::npos) << report.out;
  EXPECT_NE(report.out.find("in leakapp::LeakIntoVector", first), std::string::npos) << report.out;
}

TEST_F(HeapCliTest, ErrorsAreOneLine) {
  CliRun missing = Cppdiag({"heap", "report", Path("nope.pb.gz")});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_EQ(missing.err.rfind("cppdiag: ", 0), 0u);
  EXPECT_NE(missing.err.find("nope.pb.gz"), std::string::npos) << missing.err;
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;

  std::ofstream(Path("text.pb.gz")) << "not a profile\n";
  CliRun text = Cppdiag({"heap", "diff", Path("text.pb.gz"), Path("text.pb.gz")});
  EXPECT_NE(text.exit_code, 0);
  EXPECT_EQ(text.err.rfind("cppdiag: " + Path("text.pb.gz") + ": not a pprof profile: ", 0), 0u)
      << text.err;
  EXPECT_EQ(std::count(text.err.begin(), text.err.end(), '\n'), 1) << text.err;

  // A process without a diagnostic socket (this test itself has none).
  CliRun nosock =
      Cppdiag({"heap", "snapshot", "-p", std::to_string(::getpid()), "-o", Path("x.pb.gz")});
  EXPECT_NE(nosock.exit_code, 0);
  EXPECT_EQ(nosock.err.rfind("cppdiag: ", 0), 0u);
  EXPECT_EQ(std::count(nosock.err.begin(), nosock.err.end(), '\n'), 1) << nosock.err;
  EXPECT_FALSE(fs::exists(Path("x.pb.gz")));
}

TEST_F(HeapCliTest, AProcessWithTheProfilerOffIsToldApart) {
  LeakappProcess app({.env = {{"CPPDIAG_HEAP_SAMPLE_BYTES", "0"}}});
  ASSERT_TRUE(app.WaitUntilReady()) << app.Output();
  CliRun snap = Snapshot(app, "off.pb.gz");
  EXPECT_NE(snap.exit_code, 0);
  EXPECT_NE(snap.err.find(kProfilerOff), std::string::npos) << snap.err;
  EXPECT_FALSE(fs::exists(Path("off.pb.gz")));
}

}  // namespace
}  // namespace cppdiag::testing
