// The heap profiler end to end in real processes: a target profiles its own
// leak; a plain C program gets the runtime by LD_PRELOAD alone.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "support/scoped_temp_dir.h"
#include "support/subprocess.h"

namespace cppdiag::testing {
namespace {

using namespace std::chrono_literals;

struct TopStack {
  double estimated_bytes = 0;
  std::string frames;
};

TopStack ParseTop(const std::string& out, uint64_t* leaked) {
  std::istringstream in(out);
  std::string line;
  TopStack top;
  bool first = true;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    std::string word;
    l >> word;
    if (word == "leaked") l >> *leaked;
    if (word == "stack" && first) {
      unsigned long long count;
      l >> top.estimated_bytes >> count >> top.frames;
      first = false;
    }
  }
  return top;
}

class LeakTarget : public ::testing::TestWithParam<const char*> {};

TEST_P(LeakTarget, TopLiveStackIsTheLeakingFunctionWithin20Percent) {
  Subprocess target({.argv = {HEAP_LEAK_TARGET, "3", GetParam()}});
  auto t = target.Wait(60s);
  ASSERT_TRUE(t.has_value());
  ASSERT_EQ(t->exit_code, 0) << t->ToString() << target.Stderr();
  uint64_t leaked = 0;
  TopStack top = ParseTop(target.Stdout(), &leaked);
  ASSERT_GT(leaked, 100u << 20) << target.Stdout();
  // Frame 0 is the caller of malloc: the leaking function.
  EXPECT_EQ(top.frames.rfind("LeakFromNamedFunction;", 0), 0u) << target.Stdout();
  EXPECT_NEAR(top.estimated_bytes, static_cast<double>(leaked), 0.20 * static_cast<double>(leaked))
      << target.Stdout();
}

// The default period and two smaller ones.
INSTANTIATE_TEST_SUITE_P(Periods, LeakTarget, ::testing::Values("524288", "65536", "4096"));

// Over 10 runs (each process draws its own strides) of a program with a known
// number of live bytes per call site, the estimate of each site's live bytes
// is within 10 % of the truth on average, at the default period.
TEST(Accuracy, EachSitesEstimateWithinTenPercentOnAverageOverTenRuns) {
  constexpr int kRuns = 10;
  std::map<std::string, double> sum_estimate;
  std::map<std::string, double> truth;
  for (int run = 0; run < kRuns; ++run) {
    Subprocess target({.argv = {HEAP_SITES_TARGET, "524288"}});
    auto t = target.Wait(120s);
    ASSERT_TRUE(t.has_value());
    ASSERT_EQ(t->exit_code, 0) << t->ToString() << target.Stderr();
    std::istringstream in(target.Stdout());
    std::string word, name;
    double bytes = 0, estimate = 0;
    int sites = 0;
    while (in >> word >> name >> bytes >> estimate) {
      ASSERT_EQ(word, "site") << target.Stdout();
      truth[name] = bytes;
      sum_estimate[name] += estimate;
      ++sites;
    }
    ASSERT_EQ(sites, 6) << target.Stdout();
  }
  for (const auto& [name, bytes] : truth) {
    double mean = sum_estimate[name] / kRuns;
    EXPECT_NEAR(mean, bytes, 0.10 * bytes) << name << ": mean estimate " << mean << " of " << bytes;
  }
}

std::string SocketOf(const std::string& tmpdir, pid_t pid) {
  std::string prefix = "cppdiag-" + std::to_string(pid) + "-";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(tmpdir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && name.size() > 7 &&
        name.compare(name.size() - 7, 7, "-socket") == 0) {
      return e.path().string();
    }
  }
  return "";
}

TEST(Preload, PlainCProgramGetsADiagnosticSocket) {
  ScopedTempDir dir("heap-preload", std::filesystem::temp_directory_path().string());
  const std::string& tmp = dir.path();
  {
    Subprocess leaky({.argv = {HEAP_LEAKY_C, "leak", "32"},
                      .env = {{"LD_PRELOAD", CPPDIAG_PRELOAD_LIB}, {"TMPDIR", tmp}}});
    ASSERT_TRUE(leaky.WaitForOutput("leaked", 30s)) << leaky.Stderr();
    std::string socket;
    EXPECT_TRUE(PollUntil([&] { return !(socket = SocketOf(tmp, leaky.pid())).empty(); }, 10s))
        << "no cppdiag-" << leaky.pid() << "-*-socket in " << tmp << "\n"
        << leaky.Stderr();
    struct stat st {};
    if (!socket.empty()) {
      ASSERT_EQ(::stat(socket.c_str(), &st), 0);
      EXPECT_TRUE(S_ISSOCK(st.st_mode));
      EXPECT_EQ(st.st_mode & 0777, 0600u);
    }
  }  // ~Subprocess kills the child
}

TEST(Preload, PlainCProgramCrashWritesADump) {
  ScopedTempDir dir("heap-preload", std::filesystem::temp_directory_path().string());
  const std::string& tmp = dir.path();
  Subprocess leaky({.argv = {HEAP_LEAKY_C, "segv"},
                    .env = {{"LD_PRELOAD", CPPDIAG_PRELOAD_LIB},
                            {"TMPDIR", tmp},
                            {"CPPDIAG_ENABLE_DUMP_ON_CRASH", "1"},
                            {"CPPDIAG_DUMP_TYPE", "mini"},
                            {"CPPDIAG_DUMP_NAME", tmp + "/core.%p"}}});
  auto t = leaky.Wait(60s);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->signal, SIGSEGV) << t->ToString() << leaky.Stderr();
  std::string dump = tmp + "/core." + std::to_string(leaky.pid());
  struct stat st {};
  ASSERT_EQ(::stat(dump.c_str(), &st), 0) << "no " << dump << "\n" << leaky.Stderr();
  EXPECT_GT(st.st_size, 4096);
}

}  // namespace
}  // namespace cppdiag::testing
