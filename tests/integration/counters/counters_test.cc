// cppdiag counters end to end: the real leakapp in a memory cgroup (256 MiB
// limit) with a CPU quota (half a core), leaking; `counters collect` for 3 s
// at 250 ms writes rows whose values agree with /proc and the cgroup the test
// made, and grow while it leaks; JSON parses; `monitor` under a
// pseudo-terminal redraws in place and quits on q and SIGINT; bad input gets
// one line and a non-zero exit; /metrics carries the catalog's names.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/proc.h"
#include "diag/counters/catalog.h"
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

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kMemoryLimit = 256 * kMiB;

// RFC 4180 fields of one line (quoted fields, doubled quotes).
std::vector<std::string> SplitCsv(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      out.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

// A CSV file as rows of column name → value (absent when the cell is empty).
struct Csv {
  std::vector<std::string> header;
  std::vector<std::map<std::string, double>> rows;
};

Csv ParseCsv(const std::string& text) {
  Csv csv;
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line)) return csv;
  csv.header = SplitCsv(line);
  while (std::getline(in, line)) {
    auto fields = SplitCsv(line);
    EXPECT_EQ(fields.size(), csv.header.size()) << line;
    std::map<std::string, double> row;
    for (size_t i = 1; i < fields.size() && i < csv.header.size(); ++i) {
      if (!fields[i].empty()) row[csv.header[i]] = std::stod(fields[i]);
    }
    csv.rows.push_back(std::move(row));
  }
  return csv;
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

size_t TaskCount(pid_t pid) {
  auto tids = ListThreads(pid);
  return tids ? tids->size() : 0;
}

class CountersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cppdiag-counters-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) { return (dir_ / name).string(); }

  fs::path dir_;
};

// leakapp in a 256 MiB memory cgroup with a quota of half a core.
class LimitedLeakappTest : public CountersTest {
 protected:
  void SetUp() override {
    CountersTest::SetUp();
    memory_ = std::make_unique<ScopedCgroup>(kMemoryLimit);
    if (!memory_->ok()) GTEST_SKIP() << memory_->why_not();
    cpu_ = std::make_unique<ScopedCpuQuota>(50000, 100000, memory_->dir());
    if (!cpu_->ok()) GTEST_SKIP() << "no CPU quota: " << cpu_->why_not();
    app_ = std::make_unique<LeakappProcess>(LeakappOptions{.cgroup_procs = memory_->procs_file()});
    ASSERT_TRUE(app_->WaitUntilReady()) << app_->Output();
    ASSERT_TRUE(cpu_->Attach(app_->pid()));
  }
  void TearDown() override {
    app_.reset();  // before the cgroups it runs in
    cpu_.reset();
    memory_.reset();
    CountersTest::TearDown();
  }

  std::unique_ptr<ScopedCgroup> memory_;
  std::unique_ptr<ScopedCpuQuota> cpu_;
  std::unique_ptr<LeakappProcess> app_;
};

TEST_F(LimitedLeakappTest, CollectCsvWritesRealValuesThatGrowWhileLeaking) {
  uint64_t rss_before = app_->Rss();
  // 20 MiB/s, well under the heap hard limit (75 % of 256 MiB) over the run.
  auto started = app_->GetJson("/triggerMemoryLeak?chunkKb=1024&intervalMs=50&maxMb=150");
  ASSERT_EQ(started["status"], "started") << started.dump();

  std::string csv_path = Path("counters.csv");
  CliRun run = Cppdiag({"counters", "collect", "-p", std::to_string(app_->pid()), "--format", "csv",
                        "-o", csv_path, "--duration", "3s", "--interval", "250ms"});
  uint64_t rss_after = app_->Rss();
  size_t tasks_after = TaskCount(app_->pid());
  app_->GetJson("/stopMemoryLeak");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("Wrote "), std::string::npos) << run.out;

  Csv csv = ParseCsv(ReadAll(csv_path));
  ASSERT_GE(csv.header.size(), 3u);
  EXPECT_EQ(csv.header[0], "timestamp");
  for (const auto& c : counters::Catalog()) {
    EXPECT_NE(std::find(csv.header.begin(), csv.header.end(), c.name), csv.header.end()) << c.name;
  }
  // 3 s at 250 ms: 13 rows, less a few if the machine is slow.
  ASSERT_GE(csv.rows.size(), 9u) << ReadAll(csv_path);
  EXPECT_LE(csv.rows.size(), 14u);

  const auto& first = csv.rows.front();
  const auto& last = csv.rows.back();
  EXPECT_NEAR(last.at("elapsed_seconds"), 3.0, 0.6);
  for (size_t i = 0; i < csv.rows.size(); ++i) {
    const auto& row = csv.rows[i];
    SCOPED_TRACE("row " + std::to_string(i + 1));
    // RSS as /proc says, between what it was before and after the run.
    double rss = row.at(names::kRss);
    EXPECT_GE(rss, static_cast<double>(rss_before) - 8.0 * kMiB);
    EXPECT_LE(rss, static_cast<double>(rss_after) + 8.0 * kMiB);
    // The cgroup is the one this test made, and the percent agrees with it.
    EXPECT_EQ(row.at(names::kCgroupLimit), static_cast<double>(kMemoryLimit));
    EXPECT_NEAR(row.at(names::kCgroupPercent),
                row.at(names::kCgroupUsage) * 100.0 / static_cast<double>(kMemoryLimit), 0.01);
    EXPECT_DOUBLE_EQ(row.at(names::kCpuQuota), 0.5);
    EXPECT_GE(row.at(names::kOpenFds), 3.0);
    EXPECT_GT(row.at(names::kThreads), 1.0);
    if (i == 0) {
      EXPECT_FALSE(row.count(names::kCpuCorePercent)) << "no rate from one sample";
    } else {
      ASSERT_TRUE(row.count(names::kCpuCorePercent));
      EXPECT_NEAR(row.at(names::kCpuQuotaPercent), row.at(names::kCpuCorePercent) / 0.5, 0.01);
      EXPECT_GE(row.at(names::kCpuCorePercent), 0.0);
      // Throttled at half a core (the kernel may overshoot within a period).
      EXPECT_LE(row.at(names::kCpuCorePercent), 100.0);
    }
  }
  // Growth while leaking: 20 MiB/s for 3 s.
  EXPECT_GE(last.at(names::kRss) - first.at(names::kRss), 25.0 * kMiB);
  // What leaked is charged to the test's cgroup as it shows in RSS.
  double rss_growth = last.at(names::kRss) - first.at(names::kRss);
  EXPECT_NEAR(last.at(names::kCgroupUsage) - first.at(names::kCgroupUsage), rss_growth,
              0.25 * rss_growth + 8.0 * kMiB);
  if (!kSanitizerBuild) {
    EXPECT_GE(last.at(names::kHeapInUse) - first.at(names::kHeapInUse), 25.0 * kMiB);
    EXPECT_GE(last.at(names::kHeapSampledLive) - first.at(names::kHeapSampledLive), 15.0 * kMiB);
    // The default heap hard limit (75 %) makes the hooks count exactly.
    EXPECT_EQ(last.at(names::kHeapHardLimit), 0.75 * kMemoryLimit);
    EXPECT_GE(last.at(names::kHeapLimited) - first.at(names::kHeapLimited), 25.0 * kMiB);
    double seconds = last.at("elapsed_seconds") - first.at("elapsed_seconds");
    double allocated = last.at(names::kHeapAllocated) - first.at(names::kHeapAllocated);
    EXPECT_GE(allocated / seconds, 5.0 * kMiB) << "leaking 20 MiB/s";
    ASSERT_TRUE(last.count(names::kAllocationRate));
  }
  // Threads: what /proc/<pid>/task holds at the end.
  EXPECT_NEAR(last.at(names::kThreads), static_cast<double>(tasks_after), 2.0);
  EXPECT_EQ(last.at(names::kDumpsWritten), 0.0);
}

TEST_F(LimitedLeakappTest, CollectJsonAndJsonLinesParse) {
  for (const char* format : {"json", "jsonl"}) {
    SCOPED_TRACE(format);
    std::string path = Path(std::string("counters.") + format);
    CliRun run = Cppdiag({"counters", "collect", "-p", std::to_string(app_->pid()), "--format",
                          format, "-o", path, "--duration", "1s", "--interval", "250ms"});
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
    std::string text = ReadAll(path);
    std::vector<nlohmann::json> rows;
    if (std::string(format) == "json") {
      nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
      ASSERT_TRUE(doc.is_array()) << text;
      for (auto& r : doc) rows.push_back(r);
    } else {
      std::istringstream in(text);
      std::string line;
      while (std::getline(in, line)) {
        rows.push_back(nlohmann::json::parse(line, nullptr, false));
        ASSERT_TRUE(rows.back().is_object()) << line;
      }
    }
    ASSERT_GE(rows.size(), 3u) << text;
    for (const auto& r : rows) {
      EXPECT_TRUE(r["timestamp"].is_string());
      EXPECT_GT(r[names::kRss].get<double>(), 1.0 * kMiB);
      EXPECT_EQ(r[names::kCgroupLimit].get<double>(), static_cast<double>(kMemoryLimit));
    }
    EXPECT_FALSE(rows[0].contains(names::kCpuCorePercent));
    EXPECT_TRUE(rows[1].contains(names::kCpuQuotaPercent));
  }
}

TEST_F(LimitedLeakappTest, MetricsCarriesEveryCatalogNameThatApplies) {
  auto res = app_->Get("/metrics");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  std::string error;
  auto metrics = ParsePrometheusText(res->body, &error);
  ASSERT_TRUE(metrics) << error << "\n" << res->body;
  for (const auto& c : counters::Catalog()) {
    if (c.kind == counters::CounterKind::kDerived) {
      EXPECT_FALSE(metrics->type.count(c.family)) << c.family << " is the CLI's to derive";
      continue;
    }
    std::string when = c.when;
    // Sanitizer builds keep their allocator: no hooks, no profiler, no limit.
    if (kSanitizerBuild &&
        (when.find("hooks") != std::string::npos || when.find("profiler") != std::string::npos ||
         when.find("sanitizer") != std::string::npos ||
         when.find("heap hard limit") != std::string::npos)) {
      continue;
    }
    std::map<std::string, std::string> labels;
    if (c.label_name != nullptr) labels[c.label_name] = c.label_value;
    EXPECT_TRUE(metrics->Value(c.family, labels)) << c.name << " missing\n" << res->body;
    ASSERT_TRUE(metrics->type.count(c.family)) << c.family;
    EXPECT_EQ(metrics->type.at(c.family),
              c.kind == counters::CounterKind::kCounter ? "counter" : "gauge")
        << c.family;
    EXPECT_EQ(metrics->help.at(c.family), c.description) << c.family;
  }
  EXPECT_EQ(metrics->Value(names::kCgroupLimit), static_cast<double>(kMemoryLimit));
  EXPECT_EQ(metrics->Value(names::kCpuQuota), 0.5);
}

// Runs `argv` on a new pseudo-terminal; collects what it writes.
class PtyProcess {
 public:
  explicit PtyProcess(std::vector<std::string> argv) {
    winsize ws{};
    ws.ws_row = 50;
    ws.ws_col = 120;
    pid_ = ::forkpty(&master_, nullptr, nullptr, &ws);
    if (pid_ == 0) {
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~PtyProcess() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }
  bool ok() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // Reads for `d` (or until the terminal closes).
  void ReadFor(std::chrono::milliseconds d) {
    auto end = std::chrono::steady_clock::now() + d;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return;
      pollfd p{master_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(master_, buf, sizeof buf);
      if (n <= 0) return;  // EIO: the other side is closed
      output_.append(buf, static_cast<size_t>(n));
    }
  }
  void Type(const std::string& keys) { (void)!::write(master_, keys.data(), keys.size()); }

  // Waits for the exit and drains the terminal; the exit code, or -1.
  int Wait(std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      ReadFor(50ms);
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        status_ = st;
        ReadFor(100ms);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      }
    }
    return -1;
  }
  const std::string& output() const { return output_; }

 private:
  int master_ = -1;
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string output_;
};

class MonitorTest : public CountersTest {
 protected:
  void SetUp() override {
    CountersTest::SetUp();
    ASSERT_TRUE(app_.WaitUntilReady()) << app_.Output();
  }
  std::vector<std::string> MonitorArgs() {
    return {BuiltBinary("cppdiag"),     "counters",   "monitor", "-p",
            std::to_string(app_.pid()), "--interval", "250ms"};
  }
  // The table was drawn, then redrawn in place at least twice: the cursor
  // goes back up over it and each line is cleared before it is rewritten.
  void ExpectRedrawnInPlace(const std::string& out) {
    EXPECT_GE(Count(out, "    RSS "), 3u) << out;
    size_t up = 0;
    for (size_t at = out.find("\x1b["); at != std::string::npos; at = out.find("\x1b[", at + 1)) {
      size_t end = out.find_first_not_of("0123456789", at + 2);
      if (end != std::string::npos && end > at + 2 && out[end] == 'A') ++up;
    }
    EXPECT_GE(up, 2u) << "no cursor-up redraws in:\n" << out;
    EXPECT_GE(Count(out, "\x1b[2K"), 3u);
    EXPECT_NE(out.find("process " + std::to_string(app_.pid())), std::string::npos);
  }

  LeakappProcess app_;
};

TEST_F(MonitorTest, RedrawsInPlaceOnATerminalAndQuitsOnQ) {
  PtyProcess monitor(MonitorArgs());
  ASSERT_TRUE(monitor.ok());
  monitor.ReadFor(2500ms);
  monitor.Type("q");
  EXPECT_EQ(monitor.Wait(5s), 0) << monitor.output();
  ExpectRedrawnInPlace(monitor.output());
  EXPECT_NE(monitor.output().find("Press q or Ctrl-C to quit"), std::string::npos);
  EXPECT_NE(monitor.output().find("\x1b[?25h"), std::string::npos) << "cursor shown again";
}

TEST_F(MonitorTest, StopsOnSigint) {
  PtyProcess monitor(MonitorArgs());
  ASSERT_TRUE(monitor.ok());
  monitor.ReadFor(2500ms);
  ::kill(monitor.pid(), SIGINT);
  EXPECT_EQ(monitor.Wait(5s), 0) << monitor.output();
  ExpectRedrawnInPlace(monitor.output());
}

TEST_F(MonitorTest, SaysWhenTheTargetExits) {
  PtyProcess monitor(MonitorArgs());
  ASSERT_TRUE(monitor.ok());
  monitor.ReadFor(700ms);
  app_.process().Signal(SIGTERM);
  EXPECT_EQ(monitor.Wait(10s), 0) << monitor.output();
  EXPECT_NE(monitor.output().find("has exited"), std::string::npos) << monitor.output();
}

TEST_F(MonitorTest, PrintsOneBlockPerIntervalWhenNotATerminal) {
  Subprocess p({.argv = MonitorArgs()});
  ASSERT_TRUE(PollUntil([&] { return Count(p.Stdout(), "    RSS ") >= 3; }, 10s)) << p.Stdout();
  p.Signal(SIGINT);
  auto t = p.Wait(5s);
  ASSERT_TRUE(t && t->exit_code) << p.Stderr();
  EXPECT_EQ(*t->exit_code, 0);
  EXPECT_EQ(p.Stdout().find("\x1b["), std::string::npos) << "no escapes in a pipe";
}

TEST_F(MonitorTest, CollectStopsOnSigintLeavingACompleteFile) {
  std::string path = Path("stopped.json");
  Subprocess p(
      {.argv = {BuiltBinary("cppdiag"), "counters", "collect", "-p", std::to_string(app_.pid()),
                "--format", "json", "-o", path, "--interval", "100ms"}});
  ASSERT_TRUE(PollUntil([&] { return Count(ReadAll(path), "\"timestamp\"") >= 3; }, 10s));
  p.Signal(SIGINT);
  auto t = p.Wait(5s);
  ASSERT_TRUE(t && t->exit_code) << p.Stderr();
  EXPECT_EQ(*t->exit_code, 0) << p.Stderr();
  EXPECT_NE(p.Stdout().find("stopped by SIGINT"), std::string::npos) << p.Stdout();
  auto doc = nlohmann::json::parse(ReadAll(path), nullptr, false);
  ASSERT_TRUE(doc.is_array()) << ReadAll(path);
  EXPECT_GE(doc.size(), 3u);
}

TEST_F(MonitorTest, CollectEndsWithTheTargetLeavingACompleteFile) {
  std::string path = Path("ended.csv");
  Subprocess p({.argv = {BuiltBinary("cppdiag"), "counters", "collect", "-p",
                         std::to_string(app_.pid()), "-o", path, "--interval", "100ms"}});
  ASSERT_TRUE(PollUntil([&] { return Count(ReadAll(path), "\n") >= 4; }, 10s));
  app_.process().Signal(SIGTERM);
  auto t = p.Wait(10s);
  ASSERT_TRUE(t && t->exit_code) << p.Stderr();
  EXPECT_EQ(*t->exit_code, 0) << p.Stderr();
  EXPECT_NE(p.Stdout().find("(process " + std::to_string(app_.pid()) + " exited)"),
            std::string::npos)
      << p.Stdout();
  Csv csv = ParseCsv(ReadAll(path));
  EXPECT_GE(csv.rows.size(), 3u);
  for (const auto& row : csv.rows) EXPECT_GT(row.at(names::kRss), 0.0);
}

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
  LeakappProcess app({.env = {{"CPPDIAG_DUMP_DIR", dir_.string()}}});
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
