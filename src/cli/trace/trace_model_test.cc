#include "cli/trace/trace_model.h"
#include "cli/trace/trace_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace cppdiag::cli::trace {
namespace {

// Addresses 0x1000 + k name function "fk"; 0x2000 is "g" with "inl" inlined.
heap::SymbolizedAddress Fake(uint64_t address) {
  heap::SymbolizedAddress a;
  a.resolved = true;
  if (address == 0x2000) {
    a.frames = {{"inl", "inl", "a.h", 3}, {"g", "g", "g.cc", 7}};
  } else {
    std::string name = "f" + std::to_string(address & 0xff);
    a.frames = {{name, name, "f.cc", static_cast<int64_t>(address & 0xff)}};
  }
  return a;
}

ipc::TraceData Data() {
  ipc::TraceData d;
  d.profile = "cpu";
  d.rate_hz = 100;
  d.period_ns = 10000000;
  d.start_monotonic_ns = 1000000000;
  d.end_monotonic_ns = 1100000000;
  d.threads = {{10, "main", true, ""}, {11, "worker", true, ""}};
  // Thread 10: main -> f1 (leaf), twice; then main -> g(inl). pcs innermost
  // first; return addresses get -1 (0x1003 - 1 = 0x1002: "f2").
  d.samples = {{10, 1010000000, 1, {0x1001, 0x1003}},
               {11, 1015000000, 2, {0x2000, 0x1004}},
               {10, 1020000000, 1, {0x1001, 0x1003}},
               {10, 1030000000, 1, {0x2000, 0x1003}}};
  d.counters = {{1050000000, {{"cppdiag_process_resident_memory_bytes", 1234.0}}}};
  return d;
}

std::string Names(const SymbolizedTrace& t, const std::vector<uint32_t>& stack) {
  std::string out;
  for (uint32_t f : stack) out += (out.empty() ? "" : ";") + t.frames[f].name;
  return out;
}

TEST(SymbolizeTrace, StacksAreRootFirstWithInlinedFramesAndSharedFrames) {
  SymbolizedTrace t = SymbolizeTrace(Data(), Fake);
  ASSERT_EQ(t.stacks.size(), 4u);
  EXPECT_EQ(Names(t, t.stacks[0]), "f2;f1");
  EXPECT_EQ(Names(t, t.stacks[1]), "f3;g;inl");
  EXPECT_EQ(Names(t, t.stacks[3]), "f2;g;inl");
  EXPECT_EQ(t.frames.size(), 5u);  // f1 f2 f3 g inl, each once
  EXPECT_EQ(t.samples_by_thread.at(10).size(), 3u);
  EXPECT_EQ(t.ThreadName(11), "worker (11)");
  EXPECT_EQ(t.ThreadName(99), "thread 99");
}

TEST(Speedscope, OneSampledProfilePerThreadWeightsInNanoseconds) {
  auto j = nlohmann::json::parse(ToSpeedscope(SymbolizeTrace(Data(), Fake), "app (1)"));
  EXPECT_EQ(j.at("$schema"), "https://www.speedscope.app/file-format-schema.json");
  EXPECT_EQ(j.at("shared").at("frames").size(), 5u);
  ASSERT_EQ(j.at("profiles").size(), 2u);
  const auto& p = j.at("profiles")[0];
  EXPECT_EQ(p.at("type"), "sampled");
  EXPECT_EQ(p.at("name"), "main (10)");
  EXPECT_EQ(p.at("unit"), "nanoseconds");
  EXPECT_EQ(p.at("samples").size(), 3u);
  EXPECT_EQ(p.at("weights"), nlohmann::json({10000000, 10000000, 10000000}));
  EXPECT_EQ(j.at("profiles")[1].at("weights"), nlohmann::json({20000000}));
  EXPECT_LE(p.at("startValue").get<uint64_t>(), p.at("endValue").get<uint64_t>());
}

TEST(Chromium, SlicesNestAndCloseWithMetadataCountersAndMarkers) {
  auto j = nlohmann::json::parse(ToChromium(SymbolizeTrace(Data(), Fake), 1, "app"));
  int meta = 0, counters = 0, instants = 0;
  std::map<std::string, double> dur_of;  // thread 10's slices by name
  for (const auto& e : j.at("traceEvents")) {
    std::string ph = e.at("ph");
    if (ph == "M") ++meta;
    if (ph == "C") ++counters;
    if (ph == "i") ++instants;
    if (ph == "X" && e.at("tid") == 10) dur_of[e.at("name")] += e.at("dur").get<double>();
    if (ph == "X") {
      EXPECT_GE(e.at("dur").get<double>(), 0);
    }
  }
  EXPECT_EQ(meta, 3);  // process and two threads
  EXPECT_EQ(counters, 1);
  EXPECT_EQ(instants, 2);
  // Thread 10: f2 spans all three samples (10 ms each, contiguous) in one
  // slice; f1 the first two; g the last.
  EXPECT_DOUBLE_EQ(dur_of["f2"], 30000);
  EXPECT_DOUBLE_EQ(dur_of["f1"], 20000);
  EXPECT_DOUBLE_EQ(dur_of["g"], 10000);
}

// Data() with the heap profiler on and a dump taken.
ipc::TraceData DataWithEvents() {
  ipc::TraceData d = Data();
  // Return addresses: 0x1006 names its call at 0x1005 ("f5"), then f2.
  d.heap_samples = {{11, 1040000000, 64, 4096.0, {0x1006, 0x1003}},
                    {10, 1025000000, 100000, 100000.0, {0x1008}}};
  d.heap_sample_period_bytes = 4096;
  d.markers = {{1060000000, "dump", {{"path", "/dumps/core.1"}, {"bytes", 123}}}};
  return d;
}

TEST(SymbolizeTrace, HeapSamplesInTimeOrderNamedByTheirCalls) {
  SymbolizedTrace t = SymbolizeTrace(DataWithEvents(), Fake);
  ASSERT_EQ(t.heap_stacks.size(), 2u);
  EXPECT_EQ(t.data.heap_samples[0].tid, 10);
  EXPECT_EQ(Names(t, t.heap_stacks[0]), "f7");
  EXPECT_EQ(Names(t, t.heap_stacks[1]), "f2;f5");
}

TEST(Speedscope, HeapSamplesAreOneMoreProfileInBytesThatTheReportSkips) {
  std::string file = ToSpeedscope(SymbolizeTrace(DataWithEvents(), Fake), "app (1)");
  auto j = nlohmann::json::parse(file);
  ASSERT_EQ(j.at("profiles").size(), 3u);
  const auto& h = j.at("profiles")[2];
  EXPECT_EQ(h.at("unit"), "bytes");
  EXPECT_EQ(h.at("weights"), nlohmann::json({100000, 4096}));
  EXPECT_EQ(h.at("endValue"), 104096);
  auto r = BuildTraceReport(file);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_DOUBLE_EQ(r->total_ns, 50e6) << "bytes are not time";
  EXPECT_EQ(r->threads, 2u);
}

TEST(Chromium, HeapSamplesOnTheirThreadsAndDumpsAsGlobalMarkers) {
  auto j = nlohmann::json::parse(ToChromium(SymbolizeTrace(DataWithEvents(), Fake), 1, "app"));
  std::vector<nlohmann::json> heap, dumps, totals;
  for (const auto& e : j.at("traceEvents")) {
    if (e.value("cat", "") == "heap") heap.push_back(e);
    if (e.value("cat", "") == "marker") dumps.push_back(e);
    if (e.at("ph") == "C" && e.at("name") == "heap allocated in trace (estimated bytes)") {
      totals.push_back(e);
    }
  }
  ASSERT_EQ(heap.size(), 2u);
  EXPECT_EQ(heap[0].at("ph"), "i");
  EXPECT_EQ(heap[0].at("s"), "t");
  EXPECT_EQ(heap[0].at("tid"), 10);
  EXPECT_DOUBLE_EQ(heap[0].at("ts").get<double>(), 25000);
  EXPECT_EQ(heap[1].at("args").at("bytes"), 64);
  EXPECT_EQ(heap[1].at("args").at("stack"), nlohmann::json({"f5", "f2"})) << "innermost first";
  ASSERT_EQ(totals.size(), 2u);
  EXPECT_DOUBLE_EQ(totals[1].at("args").at("value").get<double>(), 104096);
  ASSERT_EQ(dumps.size(), 1u);
  EXPECT_EQ(dumps[0].at("name"), "dump");
  EXPECT_EQ(dumps[0].at("s"), "g");
  EXPECT_DOUBLE_EQ(dumps[0].at("ts").get<double>(), 60000);
  EXPECT_EQ(dumps[0].at("args").at("path"), "/dumps/core.1");
}

TEST(Pprof, OneSamplePerStackWithCountsAndNanoseconds) {
  heap::Symbolizer sym({}, "/");
  pprof::Profile p = ToPprof(Data(), sym);
  EXPECT_EQ(p.sample_types,
            (std::vector<pprof::ValueType>{{"samples", "count"}, {"cpu", "nanoseconds"}}));
  EXPECT_EQ(p.period, 10000000);
  ASSERT_EQ(p.samples.size(), 3u);  // two of thread 10's samples share a stack
  EXPECT_EQ(p.samples[0].values, (std::vector<int64_t>{2, 20000000}));
  EXPECT_EQ(p.samples[1].values, (std::vector<int64_t>{2, 20000000}));  // weight 2
  auto back = pprof::Decode(pprof::Encode(p));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(*back, p);
}

TEST(TraceReport, SelfAndTotalTimeFromSpeedscopeAndPprof) {
  // 5 samples of 10 ms, thread 11's weighing 2: f1 is innermost in 2 (20
  // ms), inl in 2 (30 ms); f2 is on 3 stacks (30 ms), g on 2 (30 ms).
  auto check = [](const TraceReport& r) {
    EXPECT_DOUBLE_EQ(r.total_ns, 50e6);
    std::map<std::string, FunctionTime> by;
    for (const auto& f : r.functions) by[f.name] = f;
    EXPECT_DOUBLE_EQ(by["inl"].self_ns, 30e6);
    EXPECT_DOUBLE_EQ(by["f1"].self_ns, 20e6);
    EXPECT_DOUBLE_EQ(by["f2"].self_ns, 0);
    EXPECT_DOUBLE_EQ(by["f2"].total_ns, 30e6);
    EXPECT_DOUBLE_EQ(by["g"].total_ns, 30e6);
    EXPECT_EQ(r.functions[0].name, "inl");  // most self time first
  };
  auto s = BuildTraceReport(ToSpeedscope(SymbolizeTrace(Data(), Fake), "app"));
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(s->threads, 2u);
  check(*s);
  std::string text = FormatTraceReport(*s, 3);
  EXPECT_NE(text.find("By self time:"), std::string::npos) << text;
  EXPECT_NE(text.find(" 60.0%  inl"), std::string::npos) << text;

  // pprof resolves through a real (here: empty) symbolizer: names are
  // addresses, but the times are the same.
  heap::Symbolizer sym({}, "/");
  auto p = BuildTraceReport(pprof::Encode(ToPprof(Data(), sym)));
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_DOUBLE_EQ(p->total_ns, 50e6);
  EXPECT_EQ(p->samples, 5u);  // the samples/count values

  EXPECT_FALSE(BuildTraceReport("{\"traceEvents\": []}").ok());
  EXPECT_FALSE(BuildTraceReport("not a profile").ok());
  EXPECT_FALSE(BuildTraceReport("{\"shared\": 1}").ok());
}

}  // namespace
}  // namespace cppdiag::cli::trace
