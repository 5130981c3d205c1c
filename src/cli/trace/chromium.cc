// Chrome's Trace Event Format, JSON object form
// (https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU):
// times in microseconds from the trace's start.
#include <nlohmann/json.hpp>

#include "cli/trace/trace_model.h"

namespace cppdiag::cli::trace {
namespace {

double Us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

constexpr size_t kHeapStackNames = 16;  // frames named in a heap sample's args

// One thread's samples as nested slices: a sample at t stands for
// [t - weight * period, t); consecutive samples that share a stack prefix
// extend the same slices. A gap of more than two periods (the thread was
// off CPU, in a CPU profile) closes every slice.
void AddSlices(const SymbolizedTrace& t, pid_t pid, pid_t tid, const std::vector<size_t>& indexes,
               nlohmann::json* events) {
  const uint64_t period = t.data.period_ns;
  const uint64_t origin = t.data.start_monotonic_ns;
  struct Open {
    uint32_t frame;
    uint64_t begin;
  };
  std::vector<Open> open;
  uint64_t last_end = 0;
  auto close_to = [&](size_t depth, uint64_t end) {
    while (open.size() > depth) {
      const Open& o = open.back();
      const auto& f = t.frames[o.frame];
      nlohmann::json e = {{"ph", "X"},
                          {"pid", pid},
                          {"tid", tid},
                          {"ts", Us(o.begin)},
                          {"dur", Us(end - o.begin)},
                          {"name", f.name},
                          {"cat", "cpu"}};
      if (!f.file.empty()) e["args"] = {{"file", f.file}, {"line", f.line}};
      events->push_back(std::move(e));
      open.pop_back();
    }
  };
  for (size_t i : indexes) {
    const auto& s = t.data.samples[i];
    uint64_t end = s.time_ns > origin ? s.time_ns - origin : 0;
    uint64_t span = static_cast<uint64_t>(s.weight) * period;
    uint64_t begin = end > span ? end - span : 0;
    if (begin < last_end) begin = last_end;
    if (begin > last_end + 2 * period) close_to(0, last_end);
    const auto& stack = t.stacks[i];
    size_t common = 0;
    while (common < open.size() && common < stack.size() && open[common].frame == stack[common]) {
      ++common;
    }
    close_to(common, begin);
    for (size_t k = common; k < stack.size(); ++k) open.push_back({stack[k], begin});
    last_end = std::max(end, begin);
  }
  close_to(0, last_end);
}

}  // namespace

std::string ToChromium(const SymbolizedTrace& t, pid_t pid, const std::string& process_name) {
  nlohmann::json events = nlohmann::json::array();
  events.push_back({{"ph", "M"},
                    {"pid", pid},
                    {"tid", pid},
                    {"name", "process_name"},
                    {"args", {{"name", process_name}}}});
  for (const auto& th : t.data.threads) {
    events.push_back({{"ph", "M"},
                      {"pid", pid},
                      {"tid", th.tid},
                      {"name", "thread_name"},
                      {"args", {{"name", th.name}}}});
  }
  for (const auto& [tid, indexes] : t.samples_by_thread) AddSlices(t, pid, tid, indexes, &events);
  const uint64_t origin = t.data.start_monotonic_ns;
  for (const auto& c : t.data.counters) {
    uint64_t at = c.monotonic_ns > origin ? c.monotonic_ns - origin : 0;
    for (const auto& [name, value] : c.values) {
      events.push_back({{"ph", "C"},
                        {"pid", pid},
                        {"tid", pid},
                        {"ts", Us(at)},
                        {"name", name},
                        {"args", {{"value", value}}}});
    }
  }
  auto instant = [&](uint64_t at, const std::string& name, nlohmann::json args) {
    events.push_back({{"ph", "i"},
                      {"s", "p"},
                      {"pid", pid},
                      {"tid", pid},
                      {"ts", Us(at)},
                      {"name", name},
                      {"args", std::move(args)}});
  };
  // Heap samples on their threads' tracks, and what they add up to.
  double allocated = 0;
  for (size_t i = 0; i < t.data.heap_samples.size(); ++i) {
    const auto& h = t.data.heap_samples[i];
    uint64_t at = h.time_ns > origin ? h.time_ns - origin : 0;
    nlohmann::json stack = nlohmann::json::array();  // innermost first, as a debugger shows it
    const auto& frames = t.heap_stacks[i];
    for (size_t k = frames.size(); k-- > 0 && stack.size() < kHeapStackNames;) {
      stack.push_back(t.frames[frames[k]].name);
    }
    events.push_back({{"ph", "i"},
                      {"s", "t"},
                      {"pid", pid},
                      {"tid", h.tid},
                      {"ts", Us(at)},
                      {"name", "heap sample"},
                      {"cat", "heap"},
                      {"args",
                       {{"bytes", h.bytes},
                        {"estimated_bytes", h.estimated_bytes},
                        {"stack", std::move(stack)}}}});
    allocated += h.estimated_bytes;
    events.push_back({{"ph", "C"},
                      {"pid", pid},
                      {"tid", pid},
                      {"ts", Us(at)},
                      {"name", "heap allocated in trace (estimated bytes)"},
                      {"args", {{"value", allocated}}}});
  }
  for (const auto& m : t.data.markers) {
    uint64_t at = m.time_ns > origin ? m.time_ns - origin : 0;
    events.push_back({{"ph", "i"},
                      {"s", "g"},
                      {"pid", pid},
                      {"tid", pid},
                      {"ts", Us(at)},
                      {"name", m.name},
                      {"cat", "marker"},
                      {"args", m.args}});
  }
  instant(0, "trace start", {{"profile", t.data.profile}, {"rate_hz", t.data.rate_hz}});
  uint64_t end = t.data.end_monotonic_ns > origin ? t.data.end_monotonic_ns - origin : 0;
  instant(end, "trace end",
          {{"ended_by", t.data.ended_by},
           {"lost_samples", t.data.lost_samples},
           {"heap_samples", t.data.heap_samples.size()},
           {"heap_samples_missed", t.data.heap_samples_missed},
           {"samples", t.data.samples.size()}});
  nlohmann::json out = {{"traceEvents", std::move(events)},
                        {"displayTimeUnit", "ms"},
                        {"otherData",
                         {{"exporter", "cppdiag"},
                          {"profile", t.data.profile},
                          {"rate_hz", t.data.rate_hz},
                          {"start_unix_ns", t.data.start_unix_ns}}}};
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace cppdiag::cli::trace
