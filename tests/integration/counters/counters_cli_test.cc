// cppdiag counters' command line: bad input gets one line and a non-zero
// exit, an existing file is kept unless --overwrite, `list` needs no target,
// and dumps-written counts on-demand dumps.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "common/proc.h"
#include "diag/counters/catalog.h"
#include "integration/counters/counters_fixture.h"
#include "integration/counters/cpu_cgroup.h"
#include "integration/leakapp/leakapp_process.h"
#include "integration/leakapp/prometheus_text.h"
#include "support/scoped_cgroup.h"
#include "support/subprocess.h"

namespace cppdiag::testing {
namespace {

namespace fs = std::filesystem;
namespace names = counters::names;
using namespace std::chrono_literals;

TEST_F(CountersTest, BadInputGetsOneLineAndANonZeroExit) {
  LeakappProcess app;
  ASSERT_TRUE(app.WaitUntilReady()) << app.Output();
  std::string pid = std::to_string(app.pid());
  Subprocess plain({.argv = {"/bin/sleep", "30"}});
  std::string out = Path("out.csv");

  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<Case> cases = {
      {{"counters", "collect", "-p", "999999999", "-o", out}, "no process 999999999"},
      {{"counters", "monitor", "-p", "999999999"}, "no process 999999999"},
      {{"counters", "collect", "-p", std::to_string(plain.pid()), "-o", out},
       "has no diagnostic socket"},
      {{"counters", "collect", "-p", pid, "-o", out, "--format", "xml"}, "unknown format \"xml\""},
      {{"counters", "collect", "-p", pid, "-o", out, "--duration", "soon"}, "bad duration"},
      {{"counters", "collect", "-p", pid, "-o", out, "--interval", "0s"}, "interval"},
      {{"counters", "monitor", "-p", pid, "--interval", "fast"}, "bad interval"},
      {{"counters", "collect", "-p", pid}, "--output is required"},
  };
  for (const auto& c : cases) {
    CliRun r = Cppdiag(c.args, 20s);
    std::string cmd;
    for (const auto& a : c.args) cmd += a + " ";
    SCOPED_TRACE(cmd);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.err.starts_with("cppdiag: ")) << r.err;
    EXPECT_FALSE(fs::exists(out)) << "a failed collect leaves no file";
  }

  // An existing file is kept unless --overwrite.
  ASSERT_TRUE(std::ofstream(out) << "keep\n");
  CliRun kept = Cppdiag({"counters", "collect", "-p", pid, "-o", out, "--duration", "300ms"});
  EXPECT_NE(kept.exit_code, 0);
  EXPECT_NE(kept.err.find("exists"), std::string::npos) << kept.err;
  EXPECT_EQ(ReadAll(out), "keep\n");
  CliRun replaced =
      Cppdiag({"counters", "collect", "-p", pid, "-o", out, "--duration", "300ms", "--overwrite"});
  EXPECT_EQ(replaced.exit_code, 0) << replaced.err;
  EXPECT_TRUE(ReadAll(out).starts_with("timestamp,")) << ReadAll(out);
}

TEST_F(CountersTest, ListNeedsNoTargetAndNamesEveryCounter) {
  CliRun r = Cppdiag({"counters", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& c : counters::Catalog()) {
    EXPECT_NE(r.out.find(c.name), std::string::npos) << c.name;
  }
}

TEST_F(CountersTest, DumpsWrittenCountsOnDemandDumps) {
  LeakappProcess app({.env = {{"CPPDIAG_DUMP_DIR", dir_.path()}}});
  ASSERT_TRUE(app.WaitUntilReady()) << app.Output();
  std::string pid = std::to_string(app.pid());
  auto dumps_written = [&](const std::string& name) {
    CliRun r = Cppdiag({"counters", "collect", "-p", pid, "--format", "jsonl", "-o", Path(name),
                        "--duration", "0.1s"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto row = nlohmann::json::parse(ReadAll(Path(name)), nullptr, false);
    return row.is_object() ? row.value(names::kDumpsWritten, -1.0) : -1.0;
  };
  EXPECT_EQ(dumps_written("before.jsonl"), 0.0);
  CliRun dump = Cppdiag({"dump", "collect", "-p", pid, "--type", "mini", "-o", Path("core.1")});
  ASSERT_EQ(dump.exit_code, 0) << dump.out << dump.err;
  EXPECT_EQ(dumps_written("after.jsonl"), 1.0);
}

}  // namespace
}  // namespace cppdiag::testing
