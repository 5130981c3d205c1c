// cppdiag trace collect on a program not built with us (LD_PRELOAD): the
// CPU profile splits the spinner's samples 3:1 between HotA and HotB within
// 5 points; the wall profile shows the reader blocked in read(); speedscope
// files pass speedscope's published schema, Chrome trace files are
// well-formed trace events, pprof files decode with protoc against
// profile.proto; Ctrl-C ends a trace with no --duration and still writes a
// valid file.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/subprocess.h"

namespace cppdiag::testing {
namespace {

class TraceCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target_ = std::make_unique<Subprocess>(
        SubprocessOptions{.argv = {TRACE_TARGET}, .env = {{"LD_PRELOAD", CPPDIAG_PRELOAD_LIB}}});
    ASSERT_TRUE(target_->WaitForOutput("ready", std::chrono::seconds(30))) << target_->Stderr();
    pid_ = std::to_string(target_->pid());
    ASSERT_TRUE(PollUntil([&] { return Cppdiag({"ps"}).out.find(pid_) != std::string::npos; },
                          std::chrono::seconds(30)));
  }
  std::string Path(const std::string& name) const { return target_->temp_dir() + "/" + name; }

  std::unique_ptr<Subprocess> target_;
  std::string pid_;
};

bool HasFrame(const nlohmann::json& frames, const nlohmann::json& stack, const std::string& name) {
  for (const auto& i : stack) {
    if (frames[i.get<size_t>()].at("name").get<std::string>().find(name) != std::string::npos) {
      return true;
    }
  }
  return false;
}

const nlohmann::json* Profile(const nlohmann::json& j, const std::string& thread) {
  for (const auto& p : j.at("profiles")) {
    if (p.at("name").get<std::string>().rfind(thread + " (", 0) == 0) return &p;
  }
  return nullptr;
}

void ExpectValidSpeedscope(const std::string& file) {
  std::string out = file + ".check";
  std::string cmd = std::string(CPPDIAG_NODE) +
                    " " CPPDIAG_SOURCE_DIR "/tests/trace/check_speedscope.mjs " + file + " > " +
                    out + " 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << ReadAll(out);
}

TEST_F(TraceCliTest, CpuProfileSplitsTheSpinnerThreeToOne) {
  // CPU-clock timers expire on the scheduler tick (CONFIG_HZ) while the
  // thread runs, so a thread gets at most HZ distinct samples per CPU
  // second whatever the rate (the weights carry the overruns), and fewer on
  // a busy machine. Traces are taken until there are enough samples for 5
  // points to be ~4.5 standard deviations of a binomial share (at most 12
  // of 5 s): with 700 (3 deviations) a loaded CI machine failed it once.
  constexpr size_t kEnough = 1500;
  double a = 0, b = 0, total = 0;
  size_t samples = 0;
  nlohmann::json j;
  for (int round = 0; round < 12 && samples < kEnough; ++round) {
    std::string f = Path("cpu" + std::to_string(round) + ".speedscope.json");
    CliRun run =
        Cppdiag({"trace", "collect", "-p", pid_, "--duration", "5s", "--rate", "499", "-o", f});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_NE(run.out.find("cpu profile at 499 Hz"), std::string::npos) << run.out;
    if (round == 0) {
      ExpectValidSpeedscope(f);
      CliRun report = Cppdiag({"trace", "report", f, "--top", "3"});
      EXPECT_EQ(report.exit_code, 0) << report.err;
      EXPECT_NE(report.out.find("By self time:"), std::string::npos) << report.out;
      EXPECT_NE(report.out.find("HotA"), std::string::npos) << report.out;
    }
    j = nlohmann::json::parse(ReadAll(f));
    const auto& frames = j.at("shared").at("frames");
    for (const char* name : {"spinner1", "spinner2"}) {
      const nlohmann::json* spinner = Profile(j, name);
      ASSERT_NE(spinner, nullptr) << name << " " << j.dump().substr(0, 2000);
      samples += spinner->at("samples").size();
      for (size_t i = 0; i < spinner->at("samples").size(); ++i) {
        double w = spinner->at("weights")[i].get<double>();
        total += w;
        if (HasFrame(frames, spinner->at("samples")[i], "HotA")) a += w;
        if (HasFrame(frames, spinner->at("samples")[i], "HotB")) b += w;
      }
    }
  }
  RecordProperty("spinner_samples", std::to_string(samples));
  ASSERT_GE(samples, kEnough);
  ASSERT_GT(a + b, 0.5 * total);  // most samples name one of them
  double share = a / (a + b);
  RecordProperty("hot_a_share_percent", std::to_string(share * 100));
  EXPECT_NEAR(share, 0.75, 0.05) << "HotA " << a << " HotB " << b << " of " << total;
  // The blocked reader spends no CPU: (almost) no samples.
  const nlohmann::json* reader = Profile(j, "reader");
  EXPECT_TRUE(reader == nullptr || reader->at("samples").size() <= 2);
}

TEST_F(TraceCliTest, WallProfileShowsTheReaderInRead) {
  std::string f = Path("wall.json");
  CliRun run = Cppdiag({"trace", "collect", "-p", pid_, "--duration", "2s", "--profile", "wall",
                        "--format", "chromium", "-o", f, "--counters-interval", "500ms"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto j = nlohmann::json::parse(ReadAll(f));
  ASSERT_TRUE(j.at("traceEvents").is_array());
  int reader_tid = 0, counters = 0;
  for (const auto& e : j.at("traceEvents")) {
    ASSERT_TRUE(e.at("ph").is_string()) << e;
    ASSERT_TRUE(e.at("pid").is_number_integer()) << e;
    ASSERT_TRUE(e.at("tid").is_number_integer()) << e;
    ASSERT_TRUE(e.at("name").is_string()) << e;
    if (e.at("ph") != "M") {
      ASSERT_TRUE(e.at("ts").is_number() && e.at("ts") >= 0) << e;
    }
    if (e.at("ph") == "X") {
      ASSERT_TRUE(e.at("dur").is_number() && e.at("dur") >= 0) << e;
    }
    if (e.at("ph") == "C") ++counters;
    if (e.at("ph") == "M" && e.at("name") == "thread_name" && e.at("args").at("name") == "reader") {
      reader_tid = e.at("tid");
    }
  }
  ASSERT_NE(reader_tid, 0);
  EXPECT_GT(counters, 0);
  double in_read = 0;
  for (const auto& e : j.at("traceEvents")) {
    if (e.at("ph") == "X" && e.at("tid") == reader_tid &&
        e.at("name").get<std::string>().find("read") != std::string::npos) {
      in_read += e.at("dur").get<double>();
    }
  }
  // Blocked for the whole trace: read spans most of its 2 s (in us).
  EXPECT_GT(in_read, 1.5e6) << j.dump().substr(0, 3000);
}

TEST_F(TraceCliTest, PprofDecodesWithProtoc) {
  std::string f = Path("cpu.pb.gz");
  CliRun run =
      Cppdiag({"trace", "collect", "-p", pid_, "--duration", "1s", "--format", "pprof", "-o", f});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::string txt = Path("cpu.txt");
  std::string cmd = "gzip -dc " + f +
                    " | /usr/bin/protoc --proto_path=" CPPDIAG_SOURCE_DIR
                    "/tests/integration/heap_cli --decode=perftools.profiles.Profile "
                    "profile.proto > " +
                    txt + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << ReadAll(txt);
  std::string text = ReadAll(txt);
  for (const char* expected :
       {"string_table: \"samples\"", "string_table: \"cpu\"", "string_table: \"nanoseconds\"",
        "period: 10101010", "HotA", "trace_target\""}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected;
  }
}

TEST_F(TraceCliTest, CtrlCEndsATraceWithAValidFile) {
  std::string f = Path("stopped.speedscope.json");
  Subprocess cli(
      SubprocessOptions{.argv = {BuiltBinary("cppdiag"), "trace", "collect", "-p", pid_, "-o", f}});
  // Once the command blocks SIGINT (its stopper waits for it), Ctrl-C is its.
  auto blocks_sigint = [&] {
    std::string status = ReadAll("/proc/" + std::to_string(cli.pid()) + "/status");
    size_t at = status.find("SigBlk:");
    if (at == std::string::npos) return false;
    unsigned long long mask = std::strtoull(status.c_str() + at + 7, nullptr, 16);
    return ((mask >> (SIGINT - 1)) & 1) != 0;
  };
  ASSERT_TRUE(PollUntil(blocks_sigint, std::chrono::seconds(30)));
  cli.Signal(SIGINT);
  auto done = cli.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->exit_code, 0) << cli.Stderr();
  EXPECT_NE(cli.Stdout().find("(stopped by SIGINT)"), std::string::npos) << cli.Stdout();
  ExpectValidSpeedscope(f);
}

// trace_target under LD_PRELOAD with `env`, traced in Chromium format from
// Start() until Finish() (Ctrl-C), which parses the file.
class ChromiumTrace {
 public:
  void Start(std::vector<std::string> args, std::map<std::string, std::string> env) {
    args.insert(args.begin(), TRACE_TARGET);
    env["LD_PRELOAD"] = CPPDIAG_PRELOAD_LIB;
    target_.emplace(SubprocessOptions{.argv = args, .env = env});
    ASSERT_TRUE(target_->WaitForOutput("ready", std::chrono::seconds(30))) << target_->Stderr();
    pid = std::to_string(target_->pid());
    ASSERT_TRUE(PollUntil([&] { return Cppdiag({"ps"}).out.find(pid) != std::string::npos; },
                          std::chrono::seconds(30)));
    file_ = target_->temp_dir() + "/events.json";
    cli_.emplace(SubprocessOptions{.argv = {BuiltBinary("cppdiag"), "trace", "collect", "-p", pid,
                                            "--format", "chromium", "-o", file_}});
    // The trace runs once the target's threads have their sampling timers.
    ASSERT_TRUE(PollUntil(
        [&] { return ReadAll("/proc/" + pid + "/timers").find("ID:") != std::string::npos; },
        std::chrono::seconds(30)));
  }
  void Finish(nlohmann::json* events) {
    cli_->Signal(SIGINT);
    auto done = cli_->Wait(std::chrono::seconds(60));
    ASSERT_TRUE(done.has_value());
    ASSERT_EQ(done->exit_code, 0) << cli_->Stderr();
    *events = nlohmann::json::parse(ReadAll(file_));
  }
  std::string pid;

 private:
  std::optional<Subprocess> target_, cli_;
  std::string file_;
};

// Heap samples and a dump on the CPU timeline: the target allocates a 64 KiB
// block from AllocBlock every millisecond (at a 64 KiB period the heap
// profiler samples ~6 in 10) and a dump is taken while the trace runs.
TEST(TraceEventsTest, HeapSamplesAndADumpOnTheTimeline) {
  ScopedTempDir dumps("cppdiag-trace-dumps");
  ChromiumTrace trace;
  ASSERT_NO_FATAL_FAILURE(trace.Start(
      {"alloc"}, {{"CPPDIAG_HEAP_SAMPLE_BYTES", "65536"}, {"CPPDIAG_DUMP_DIR", dumps.path()}}));
  const std::string core = dumps.path() + "/during-trace.core";
  CliRun dump = Cppdiag({"dump", "collect", "-p", trace.pid, "--type", "mini", "-o", core});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  nlohmann::json j;
  ASSERT_NO_FATAL_FAILURE(trace.Finish(&j));
  int allocator_tid = 0;
  for (const auto& e : j.at("traceEvents")) {
    if (e.at("ph") == "M" && e.at("name") == "thread_name" &&
        e.at("args").at("name") == "allocator") {
      allocator_tid = e.at("tid");
    }
  }
  ASSERT_NE(allocator_tid, 0);
  // The allocator's samples, all from AllocBlock (the runtime's own threads
  // allocate too: theirs are on their threads).
  size_t heap = 0, in_alloc_block = 0, dump_markers = 0;
  double last_total = 0;
  for (const auto& e : j.at("traceEvents")) {
    if (e.value("cat", "") == "heap") {
      EXPECT_EQ(e.at("ph"), "i") << e;
      EXPECT_EQ(e.at("s"), "t") << e;
      EXPECT_GT(e.at("args").at("bytes").get<uint64_t>(), 0u) << e;
    }
    if (e.value("cat", "") == "heap" && e.at("tid") == allocator_tid) {
      ++heap;
      EXPECT_EQ(e.at("args").at("bytes"), 65536) << e;
      EXPECT_GE(e.at("args").at("estimated_bytes").get<double>(), 65536) << e;
      const auto& stack = e.at("args").at("stack");
      if (!stack.empty() && stack[0].get<std::string>().find("AllocBlock") != std::string::npos) {
        ++in_alloc_block;
      }
    }
    if (e.at("ph") == "C" && e.at("name") == "heap allocated in trace (estimated bytes)") {
      EXPECT_GE(e.at("args").at("value").get<double>(), last_total) << "a running total";
      last_total = e.at("args").at("value").get<double>();
    }
    if (e.value("cat", "") == "marker" && e.at("name") == "dump") {
      ++dump_markers;
      EXPECT_EQ(e.at("args").at("path"), core) << e;
      EXPECT_EQ(e.at("args").at("type"), "mini") << e;
    }
  }
  RecordProperty("heap_samples", std::to_string(heap));
  EXPECT_GT(heap, 0u);
  EXPECT_EQ(in_alloc_block, heap) << "every sample's innermost frame is AllocBlock";
  EXPECT_EQ(dump_markers, 1u);
}

// A monitor firing on the traced target: the trigger marker, then the dump
// marker that names it, and the dump's note gives the trigger as its reason.
TEST(TraceEventsTest, AMonitorFiringIsATriggerMarkerBeforeItsDump) {
  ScopedTempDir dumps("cppdiag-trace-trigger");
  ChromiumTrace trace;
  ASSERT_NO_FATAL_FAILURE(trace.Start({}, {{"CPPDIAG_DUMP_DIR", dumps.path()}}));
  CliRun monitor = Cppdiag(
      {"monitor", "-p", trace.pid, "--timer", "-n", "1", "--type", "mini", "-o", dumps.path()});
  ASSERT_EQ(monitor.exit_code, 0) << monitor.out << monitor.err;
  nlohmann::json j;
  ASSERT_NO_FATAL_FAILURE(trace.Finish(&j));

  const nlohmann::json *trigger = nullptr, *dump = nullptr;
  for (const auto& e : j.at("traceEvents")) {
    if (e.value("cat", "") != "marker") continue;
    if (e.at("name") == "trigger") trigger = &e;
    if (e.at("name") == "dump") dump = &e;
  }
  ASSERT_NE(trigger, nullptr) << j.dump();
  ASSERT_NE(dump, nullptr) << j.dump();
  EXPECT_EQ(trigger->at("args").at("trigger"), "timer 1/1") << *trigger;
  EXPECT_EQ(dump->at("args").at("reason"), "trigger: timer 1/1") << *dump;
  EXPECT_EQ(trigger->at("args").at("path"), dump->at("args").at("path"));
  EXPECT_LE(trigger->at("ts").get<double>(), dump->at("ts").get<double>());
  const std::string core = dump->at("args").at("path");
  EXPECT_NE(monitor.out.find(core), std::string::npos) << monitor.out;
  CliRun info = Cppdiag({"dump", "analyze", core, "--json", "-c", "info"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out).at("cppdiag").at("reason"), "trigger: timer 1/1")
      << info.out;
}

TEST_F(TraceCliTest, BadArgumentsFailWithOneLine) {
  for (auto args : std::vector<std::vector<std::string>>{
           {"--format", "perf"}, {"--profile", "gpu"}, {"--rate", "0"}, {"--duration", "soon"}}) {
    std::vector<std::string> argv = {"trace", "collect", "-p", pid_, "-o", Path("x")};
    argv.insert(argv.end(), args.begin(), args.end());
    CliRun run = Cppdiag(argv);
    EXPECT_NE(run.exit_code, 0) << args[0];
    EXPECT_EQ(run.err.find('\n'), run.err.size() - 1) << run.err;
  }
  // The target still serves.
  EXPECT_EQ(
      Cppdiag({"trace", "collect", "-p", pid_, "--duration", "100ms", "-o", Path("ok")}).exit_code,
      0);
}

}  // namespace
}  // namespace cppdiag::testing
