// Integration tests of leakapp: the real binary, real HTTP, real memory, real
// signals and a real memory cgroup.
#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

#include "common/cgroup.h"
#include "common/proc.h"
#include "integration/leakapp/leakapp_process.h"
#include "integration/leakapp/prometheus_text.h"
#include "support/scoped_cgroup.h"

namespace cppdiag::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr uint64_t kMiB = 1 << 20;

// A running leakapp, ready to serve, for each test.
class LeakappTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(app_.WaitUntilReady()); }

  // Starts a leak with the given query, expecting 200 and "started".
  void Trigger(const std::string& query) {
    json started = app_.GetJson("/triggerMemoryLeak?" + query);
    ASSERT_EQ(started["status"], "started") << started.dump();
  }

  LeakappProcess app_;
};

TEST_F(LeakappTest, RssGrowsBy100MbWithin3sAtInterval10ms) {
  uint64_t before = app_.Rss();
  ASSERT_GT(before, 0u);
  Trigger("intervalMs=10");
  bool grew = PollUntil([&] { return app_.Rss() >= before + 100 * kMiB; }, 3s);
  uint64_t after = app_.Rss();
  EXPECT_TRUE(grew) << "RSS went from " << before / kMiB << " MB to " << after / kMiB
                    << " MB in 3 s\n"
                    << app_.Output();
  json stopped = app_.GetJson("/stopMemoryLeak");
  EXPECT_EQ(stopped["status"], "stopped");
  EXPECT_EQ(stopped["wasRunning"], true);
}

TEST_F(LeakappTest, LogsEveryRoundWithAGrowingTotal) {
  Trigger("intervalMs=1&maxMb=20");
  ASSERT_TRUE(app_.WaitForLeakState("stopped"));
  std::vector<double> totals = app_.LoggedTotals();
  ASSERT_EQ(totals.size(), 20u) << app_.Output();
  for (size_t i = 0; i < totals.size(); ++i) {
    EXPECT_DOUBLE_EQ(totals[i], static_cast<double>(i + 1)) << "round " << i + 1;
  }
  EXPECT_NE(app_.process().Stdout().find("Allocated 1.00 MB this round, Total: 20.00 MB"),
            std::string::npos);
}

TEST_F(LeakappTest, StatusReportsTheDocumentedFields) {
  json s = app_.GetJson("/status");
  EXPECT_EQ(s["pid"], app_.pid());
  EXPECT_TRUE(s["uptimeSeconds"].is_number());
  EXPECT_EQ(s["leakedBytes"], 0);
  EXPECT_EQ(s["leakedMb"], 0.0);
  ASSERT_TRUE(s["rssBytes"].is_number_unsigned());
  EXPECT_GT(s["rssBytes"].get<uint64_t>(), 1 * kMiB);
  EXPECT_TRUE(s["rssMb"].is_number());
  EXPECT_GE(s["peakRssBytes"].get<uint64_t>(), s["rssBytes"].get<uint64_t>());
  ASSERT_TRUE(s["heapInUseBytes"].is_number_unsigned());
  EXPECT_EQ(s["dumpsWritten"], 0);
  if (!kSanitizerBuild) {
    EXPECT_GT(s["heapInUseBytes"].get<uint64_t>(), 0u);
  }
  // The cgroup is read fresh; the heap limit is 75% of its limit, or off.
  ASSERT_TRUE(s.contains("cgroup"));
  ASSERT_TRUE(s.contains("heapHardLimitBytes"));
  auto cgroup = CgroupReader().ReadMemory(app_.pid());
  if (!cgroup) {
    EXPECT_TRUE(s["cgroup"].is_null()) << s.dump();
  } else {
    EXPECT_EQ(s["cgroup"]["version"], cgroup->version);
    EXPECT_GT(s["cgroup"]["usageBytes"].get<uint64_t>(), 0u);
    if (cgroup->limit_bytes) {
      EXPECT_EQ(s["cgroup"]["limitBytes"], *cgroup->limit_bytes);
      if (!kSanitizerBuild) {
        EXPECT_EQ(s["heapHardLimitBytes"], *cgroup->limit_bytes * 3 / 4);
      }
    } else {
      EXPECT_TRUE(s["cgroup"]["limitBytes"].is_null());
      EXPECT_TRUE(s["heapHardLimitBytes"].is_null());
    }
  }
  EXPECT_EQ(s["leak"], json::parse(R"({"state": "idle", "pattern": null, "chunkKb": null,
      "intervalMs": null, "maxMb": null, "rounds": 0, "roundsTotal": 0})"));

  Trigger("chunkKb=512&intervalMs=0&maxMb=2&pattern=cache");
  ASSERT_TRUE(app_.WaitForLeakState("stopped"));
  s = app_.GetJson("/status");
  EXPECT_EQ(s["leakedBytes"], 2 * kMiB);
  EXPECT_EQ(s["leakedMb"], 2.0);
  EXPECT_EQ(s["leak"], json::parse(R"({"state": "stopped", "pattern": "cache", "chunkKb": 512,
      "intervalMs": 0, "maxMb": 2, "rounds": 4, "roundsTotal": 4})"));
}

TEST_F(LeakappTest, MetricsAreValidPrometheusText) {
  Trigger("intervalMs=0&maxMb=3");
  ASSERT_TRUE(app_.WaitForLeakState("stopped"));
  auto res = app_.Get("/metrics");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
  std::string error;
  auto metrics = ParsePrometheusText(res->body, &error);
  ASSERT_TRUE(metrics) << error << "\n" << res->body;

  for (const char* name :
       {"cppdiag_process_resident_memory_bytes", "cppdiag_process_threads",
        "cppdiag_process_open_fds", "cppdiag_process_cpu_seconds_total", "leakapp_leaked_bytes",
        "leakapp_leak_rounds_total", "leakapp_leak_running"}) {
    EXPECT_TRUE(metrics->Value(name)) << name << " missing\n" << res->body;
  }
  for (const auto& [name, type] : metrics->type) {
    EXPECT_TRUE(name.starts_with("cppdiag_") || name.starts_with("leakapp_")) << name;
    EXPECT_EQ(type == "counter", name.ends_with("_total")) << name << " is a " << type;
  }
  EXPECT_EQ(metrics->Value("leakapp_leaked_bytes"), 3.0 * kMiB);
  EXPECT_EQ(metrics->Value("leakapp_leak_rounds_total"), 3.0);
  EXPECT_EQ(metrics->Value("leakapp_leak_running"), 0.0);
  EXPECT_GE(metrics->Value("cppdiag_process_threads").value_or(0), 2.0);
  EXPECT_GE(metrics->Value("cppdiag_process_open_fds").value_or(0), 3.0);
  EXPECT_GT(metrics->Value("cppdiag_process_page_faults_total", {{"kind", "minor"}}).value_or(0),
            0.0);
  EXPECT_TRUE(metrics->Value("cppdiag_process_page_faults_total", {{"kind", "major"}}));
  // The same RSS as /proc says, give or take what changed in between.
  double rss = metrics->Value("cppdiag_process_resident_memory_bytes").value_or(0);
  EXPECT_NEAR(rss, static_cast<double>(app_.Rss()), 8.0 * kMiB);
  if (!kSanitizerBuild) {
    EXPECT_GE(metrics->Value("cppdiag_heap_in_use_bytes").value_or(0), 3.0 * kMiB);
  } else {
    // mallinfo2 measures nothing under a sanitizer's allocator: left out, not 0.
    EXPECT_FALSE(metrics->Value("cppdiag_heap_in_use_bytes")) << res->body;
  }
  if (CgroupReader().ReadMemory(app_.pid())) {
    EXPECT_TRUE(metrics->Value("cppdiag_cgroup_memory_usage_bytes")) << res->body;
  }
}

struct BadRequest {
  const char* method;
  const char* target;
  int status;
  const char* parameter;  // nullptr when the error names none
};

TEST_F(LeakappTest, BadRequestsGetAJsonErrorNamingTheParameter) {
  const BadRequest cases[] = {
      {"GET", "/triggerMemoryLeak?chunkKb=abc", 400, "chunkKb"},
      {"GET", "/triggerMemoryLeak?chunkKb=0", 400, "chunkKb"},
      {"GET", "/triggerMemoryLeak?chunkKb=1.5", 400, "chunkKb"},
      {"GET", "/triggerMemoryLeak?intervalMs=-1", 400, "intervalMs"},
      {"GET", "/triggerMemoryLeak?intervalMs=99999999999999999999", 400, "intervalMs"},
      {"GET", "/triggerMemoryLeak?maxMb=x", 400, "maxMb"},
      {"GET", "/triggerMemoryLeak?pattern=nope", 400, "pattern"},
      {"GET", "/triggerMemoryLeak?chunkkb=1", 400, "chunkkb"},
      {"POST", "/crash?kind=nope", 400, "kind"},
      {"POST", "/crash", 400, "kind"},
      {"GET", "/crash?kind=segv", 405, nullptr},
      {"POST", "/triggerMemoryLeak", 405, nullptr},
      {"GET", "/no/such/page", 404, nullptr},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.target);
    auto res = std::string(c.method) == "GET" ? app_.Get(c.target) : app_.Post(c.target);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, c.status) << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    auto body = json::parse(res->body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << res->body;
    EXPECT_TRUE(body["error"].is_string()) << res->body;
    if (c.parameter != nullptr) {
      EXPECT_EQ(body["parameter"], c.parameter) << res->body;
    }
    if (c.status == 405) {
      EXPECT_FALSE(res->get_header_value("Allow").empty());
    }
  }
  // None of them started a leak or crashed anything.
  EXPECT_TRUE(app_.process().running());
  EXPECT_EQ(app_.GetJson("/status")["leak"]["state"], "idle");
}

TEST_F(LeakappTest, ASecondTriggerWhileLeakingIsAConflict) {
  Trigger("intervalMs=1000&pattern=vector");
  auto res = app_.Get("/triggerMemoryLeak?pattern=cache");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 409) << res->body;
  auto body = json::parse(res->body, nullptr, false);
  EXPECT_TRUE(body["error"].is_string()) << res->body;
  EXPECT_EQ(body["leak"]["pattern"], "vector") << res->body;
  EXPECT_EQ(app_.GetJson("/stopMemoryLeak")["wasRunning"], true);
  // Once stopped, a new leak may start (and adds to what is held).
  Trigger("intervalMs=0&maxMb=3&pattern=cache");
  ASSERT_TRUE(app_.WaitForLeakState("stopped"));
  EXPECT_EQ(app_.GetJson("/status")["leakedBytes"], 3 * kMiB);
}

// `curl -X POST` sends no Content-Length; the reply must not wait for a body.
// A server that waited for one would answer nothing (its read timeout is
// 10 s) before RawRequest gives up (3 s): the reply is the proof.
TEST_F(LeakappTest, PostWithoutContentLengthIsAnsweredAtOnce) {
  std::string response = app_.RawRequest(
      "POST /crash?kind=nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(response.rfind("HTTP/1.1 400 ", 0), 0u) << response;
  EXPECT_NE(response.find(R"("parameter":"kind")"), std::string::npos) << response;
  EXPECT_TRUE(app_.process().running());
}

TEST_F(LeakappTest, ProbesAnswer) {
  auto health = app_.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  auto ready = app_.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
}

TEST_F(LeakappTest, ReleaseMemoryBringsRssBelowHalfOfItsPeak) {
  Trigger("intervalMs=0&maxMb=220");
  ASSERT_TRUE(app_.WaitForLeakState("stopped"));
  uint64_t peak = app_.Rss();
  ASSERT_GE(peak, 220 * kMiB) << app_.Output();
  json released = app_.GetJson("/releaseMemory");
  EXPECT_EQ(released["status"], "released");
  EXPECT_EQ(released["freedBytes"], 220 * kMiB);
  if (!kAsanBuild) {
    bool dropped = PollUntil([&] { return app_.Rss() < peak / 2; }, 5s);
    EXPECT_TRUE(dropped) << "RSS " << app_.Rss() / kMiB << " MB after release, peak " << peak / kMiB
                         << " MB";
  }
  json s = app_.GetJson("/status");
  EXPECT_EQ(s["leakedBytes"], 0);
  EXPECT_EQ(s["leak"]["state"], "idle");
  // VmHWM lags VmRSS a little (the kernel batches per-thread RSS counts).
  EXPECT_GE(s["peakRssBytes"].get<uint64_t>(), 200 * kMiB);
}

TEST_F(LeakappTest, MaxMbCapsTheLeak) {
  uint64_t before = app_.Rss();
  Trigger("intervalMs=1&maxMb=30");
  ASSERT_TRUE(app_.WaitForLeakState("stopped"));
  json s = app_.GetJson("/status");
  EXPECT_EQ(s["leakedBytes"], 30 * kMiB);
  EXPECT_EQ(s["leak"]["rounds"], 30);
  std::vector<double> totals = app_.LoggedTotals();
  ASSERT_FALSE(totals.empty());
  EXPECT_DOUBLE_EQ(totals.back(), 30.0);
  EXPECT_NE(app_.process().Stdout().find("Reached maxMb=30"), std::string::npos) << app_.Output();
  uint64_t grown = app_.Rss() - before;
  EXPECT_GE(grown, 28 * kMiB);
  if (!kSanitizerBuild) {
    EXPECT_LE(grown, 60 * kMiB);
  }
}

TEST_F(LeakappTest, SigtermExitsWithStatusZero) {
  // An idle keep-alive connection must not hold up the shutdown: left to
  // itself it would end at leakapp's 10 s read timeout, so an exit within
  // half of that shows the shutdown closed it (a deadline, not a timing).
  httplib::Client client("127.0.0.1", app_.port());
  client.set_keep_alive(true);
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  app_.process().Signal(SIGTERM);
  auto end = app_.process().Wait(5s);
  ASSERT_TRUE(end) << "still running 5 s after SIGTERM: the idle connection held the shutdown";
  EXPECT_EQ(end->exit_code, 0) << end->ToString() << "\n" << app_.Output();
  EXPECT_NE(app_.process().Stdout().find("shutting down"), std::string::npos) << app_.Output();
}

TEST_F(LeakappTest, SigtermWhileLeakingExitsWithStatusZero) {
  Trigger("intervalMs=10");
  ASSERT_TRUE(PollUntil([&] { return app_.LoggedTotals().size() >= 3; }, 5s)) << app_.Output();
  app_.process().Signal(SIGTERM);
  auto end = app_.process().Wait(10s);
  ASSERT_TRUE(end) << "still running 10 s after SIGTERM";
  EXPECT_EQ(end->exit_code, 0) << end->ToString() << "\n" << app_.Output();
}

TEST_F(LeakappTest, SigintExitsWithStatusZero) {
  app_.process().Signal(SIGINT);
  auto end = app_.process().Wait(10s);
  ASSERT_TRUE(end) << "still running 10 s after SIGINT";
  EXPECT_EQ(end->exit_code, 0) << end->ToString() << "\n" << app_.Output();
}

// Each pattern leaks real, written memory and is reported by /status.
class LeakPatternTest : public LeakappTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(LeakPatternTest, Leaks) {
  const std::string pattern = GetParam();
  uint64_t before = app_.Rss();
  Trigger("intervalMs=0&maxMb=64&pattern=" + pattern);
  ASSERT_TRUE(app_.WaitForLeakState("stopped"));
  json s = app_.GetJson("/status");
  EXPECT_EQ(s["leak"]["pattern"], pattern);
  EXPECT_EQ(s["leakedBytes"], 64 * kMiB);
  EXPECT_GE(app_.Rss(), before + 56 * kMiB)
      << "RSS " << before / kMiB << " -> " << app_.Rss() / kMiB << " MB";
  EXPECT_NE(app_.process().Stdout().find("Leak started: pattern=" + pattern), std::string::npos);
  // And it is all given back.
  app_.GetJson("/releaseMemory");
  if (kAsanBuild) return;
  EXPECT_TRUE(PollUntil([&] { return app_.Rss() < before + 16 * kMiB; }, 5s))
      << "RSS " << app_.Rss() / kMiB << " MB after release";
}

INSTANTIATE_TEST_SUITE_P(Patterns, LeakPatternTest,
                         ::testing::Values("vector", "cache", "cycle", "string"),
                         [](const auto& test) { return std::string(test.param); });

// Out of memory in a leak: the pattern's own function logs it and the process
// aborts. Address space is capped with RLIMIT_AS so that allocation fails
// without touching the machine's memory.
TEST_P(LeakPatternTest, OutOfMemoryIsLoggedThenAborts) {
  if (kSanitizerBuild) GTEST_SKIP() << "the sanitizer reports a failed new instead of throwing";
  const std::string pattern = GetParam();
  rlimit limit{};
  limit.rlim_cur = limit.rlim_max = app_.VmSize() + 256 * kMiB;
  ASSERT_EQ(::prlimit(app_.pid(), RLIMIT_AS, &limit, nullptr), 0) << std::strerror(errno);
  Trigger("intervalMs=0&pattern=" + pattern);
  auto end = app_.process().Wait(20s);
  ASSERT_TRUE(end) << "no crash within 20 s\n" << app_.Output();
  EXPECT_EQ(end->signal, SIGABRT) << end->ToString() << "\n" << app_.Output();
  std::string out = app_.process().Stdout();
  EXPECT_NE(out.find("OutOfMemory caught! Application is likely to crash soon. std::bad_alloc "
                     "(pattern " +
                     pattern + ")"),
            std::string::npos)
      << app_.Output();
  EXPECT_FALSE(app_.LoggedTotals().empty());
}

// POST /crash answers, then the process dies the way asked.
struct CrashCase {
  const char* kind;
  int signal;
};

void PrintTo(const CrashCase& c, std::ostream* os) { *os << c.kind; }

class CrashTest : public LeakappTest, public ::testing::WithParamInterface<CrashCase> {};

TEST_P(CrashTest, EndsByTheExpectedSignal) {
  if (kSanitizerBuild) GTEST_SKIP() << "the sanitizer intercepts the crash";
  const CrashCase c = GetParam();
  auto res = app_.Post(std::string("/crash?kind=") + c.kind);
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 202);
  auto body = json::parse(res->body, nullptr, false);
  EXPECT_EQ(body["kind"], c.kind) << res->body;
  auto end = app_.process().Wait(10s);
  ASSERT_TRUE(end) << "still running 10 s after POST /crash\n" << app_.Output();
  EXPECT_EQ(end->signal, c.signal) << end->ToString() << "\n" << app_.Output();
  EXPECT_NE(app_.process().Stdout().find(std::string("Crashing on purpose: kind=") + c.kind),
            std::string::npos);
  if (std::string(c.kind) == "oom") {
    EXPECT_NE(app_.process().Stderr().find("std::bad_alloc"), std::string::npos) << app_.Output();
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, CrashTest,
                         ::testing::Values(CrashCase{"segv", SIGSEGV}, CrashCase{"abort", SIGABRT},
                                           CrashCase{"oom", SIGABRT}),
                         [](const auto& test) { return std::string(test.param.kind); });

// Inside a memory cgroup with a limit, /status reports it, and the heap hard
// limit is 75% of it.
TEST(LeakappCgroupTest, ReportsTheLimitOfItsMemoryCgroup) {
  ScopedCgroup cg(300 << 20);
  if (!cg.ok()) GTEST_SKIP() << "no memory cgroup: " << cg.why_not();
  LeakappProcess app({.cgroup_procs = cg.procs_file()});
  ASSERT_TRUE(app.WaitUntilReady());
  json s = app.GetJson("/status");
  ASSERT_TRUE(s["cgroup"].is_object()) << s.dump();
  EXPECT_EQ(s["cgroup"]["version"], cg.version());
  EXPECT_EQ(s["cgroup"]["limitBytes"], 314572800u) << s.dump();
  EXPECT_GT(s["cgroup"]["usageBytes"].get<uint64_t>(), 0u);
  EXPECT_LT(s["cgroup"]["usageBytes"].get<uint64_t>(), 314572800u);
  auto res = app.Get("/metrics");
  ASSERT_TRUE(res);
  std::string error;
  auto metrics = ParsePrometheusText(res->body, &error);
  ASSERT_TRUE(metrics) << error;
  EXPECT_EQ(metrics->Value("cppdiag_cgroup_memory_limit_bytes"), 314572800.0);
  if (kSanitizerBuild) GTEST_SKIP() << "no heap hard limit with the sanitizer's allocator";
  EXPECT_EQ(s["heapHardLimitBytes"], 235929600u) << s.dump();
  EXPECT_EQ(metrics->Value("cppdiag_heap_hard_limit_bytes"), 235929600.0);
  EXPECT_NE(app.process().Stdout().find("235929600 bytes)"), std::string::npos) << app.Output();
}

// DESIGN.md's first flow, up to the crash: a leak inside a limited cgroup
// reaches the heap hard limit (75% of it) long before the cgroup limit, so
// operator new throws, the pattern logs the OOM and the process aborts; the
// kernel's OOM killer never has to act.
TEST(LeakappCgroupTest, LeakHitsTheHeapHardLimitAndAbortsBeforeTheOomKiller) {
  if (kSanitizerBuild) GTEST_SKIP() << "no heap hard limit with the sanitizer's allocator";
  ScopedCgroup cg(300 << 20);
  if (!cg.ok()) GTEST_SKIP() << "no memory cgroup: " << cg.why_not();
  LeakappProcess app({.cgroup_procs = cg.procs_file()});
  ASSERT_TRUE(app.WaitUntilReady());
  ASSERT_EQ(app.GetJson("/status")["heapHardLimitBytes"], 235929600u);
  json started = app.GetJson("/triggerMemoryLeak?intervalMs=0&pattern=vector");
  ASSERT_EQ(started["status"], "started");
  auto end = app.process().Wait(30s);
  ASSERT_TRUE(end) << "no crash within 30 s\n" << app.Output();
  EXPECT_EQ(end->signal, SIGABRT) << end->ToString() << " (SIGKILL: the OOM killer won)\n"
                                  << app.Output();
  EXPECT_EQ(cg.oom_kills(), 0u);
  EXPECT_NE(app.process().Stdout().find("OutOfMemory caught! Application is likely to crash "
                                        "soon. std::bad_alloc (pattern vector)"),
            std::string::npos)
      << app.Output();
  // It got close to the limit (225 MiB, less what the process held before).
  std::vector<double> totals = app.LoggedTotals();
  ASSERT_FALSE(totals.empty());
  EXPECT_GE(totals.back(), 180.0);
  EXPECT_LE(totals.back(), 225.0);
}

}  // namespace
}  // namespace cppdiag::testing
