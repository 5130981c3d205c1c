// cppdiag counters collect end to end: the real leakapp in a memory cgroup
// (256 MiB limit) with a CPU quota (half a core), leaking; `counters collect`
// for 3 s at 250 ms writes rows whose values agree with /proc and the cgroup
// the test made, and grow while it leaks; JSON parses; /metrics carries the
// catalog's names.
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

constexpr uint64_t kMemoryLimit = 256 * kMiB;

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

}  // namespace
}  // namespace cppdiag::testing
