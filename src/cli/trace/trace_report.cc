#include "cli/trace/trace_report.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/display.h"
#include "cli/heap/pprof.h"

namespace cppdiag::cli::trace {
namespace {

struct Tally {
  std::map<std::string, FunctionTime> by_name;
  void Add(const std::vector<std::string>& innermost_first, double ns) {
    if (innermost_first.empty()) return;
    auto& leaf = by_name[innermost_first[0]];
    leaf.name = innermost_first[0];
    leaf.self_ns += ns;
    std::set<std::string> seen;
    for (const auto& n : innermost_first) {
      if (!seen.insert(n).second) continue;
      auto& f = by_name[n];
      f.name = n;
      f.total_ns += ns;
    }
  }
};

Result<TraceReport> FromSpeedscope(const nlohmann::json& j) {
  TraceReport r;
  r.format = "speedscope";
  Tally tally;
  try {
    const auto& frames = j.at("shared").at("frames");
    for (const auto& p : j.at("profiles")) {
      if (p.value("type", "") != "sampled") continue;
      // Time profiles only (a heap profile's weights are bytes).
      const std::string unit = p.value("unit", "none");
      double scale = unit == "nanoseconds"    ? 1
                     : unit == "microseconds" ? 1e3
                     : unit == "milliseconds" ? 1e6
                     : unit == "seconds"      ? 1e9
                                              : 0;
      if (scale == 0) continue;
      ++r.threads;
      const auto& samples = p.at("samples");
      const auto& weights = p.at("weights");
      if (samples.size() != weights.size()) {
        return Error::Invalid("speedscope profile with samples and weights of different lengths");
      }
      for (size_t i = 0; i < samples.size(); ++i) {
        std::vector<std::string> names;
        const auto& stack = samples[i];
        for (size_t k = stack.size(); k-- > 0;) {
          names.push_back(frames.at(stack[k].get<size_t>()).at("name").get<std::string>());
        }
        double ns = weights[i].get<double>() * scale;
        tally.Add(names, ns);
        r.total_ns += ns;
        ++r.samples;
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return Error::Invalid(std::string("not a speedscope file we can read: ") + e.what());
  }
  for (auto& [_, f] : tally.by_name) r.functions.push_back(std::move(f));
  return r;
}

Result<TraceReport> FromPprof(const pprof::Profile& p) {
  TraceReport r;
  r.format = "pprof";
  int index = -1;
  for (size_t i = 0; i < p.sample_types.size(); ++i) {
    if (p.sample_types[i].unit == "nanoseconds") index = static_cast<int>(i);
  }
  if (index < 0) return Error::Invalid("pprof profile has no sample type in nanoseconds");
  int count_index = -1;  // ours: samples/count; else each record counts one
  for (size_t i = 0; i < p.sample_types.size(); ++i) {
    if (p.sample_types[i].unit == "count") count_index = static_cast<int>(i);
  }
  std::map<uint64_t, const pprof::Location*> locations;
  for (const auto& l : p.locations) locations[l.id] = &l;
  std::map<uint64_t, std::string> functions;
  for (const auto& f : p.functions) functions[f.id] = f.name;
  Tally tally;
  for (const auto& s : p.samples) {
    if (static_cast<size_t>(index) >= s.values.size()) continue;
    std::vector<std::string> names;
    for (uint64_t id : s.location_ids) {
      auto l = locations.find(id);
      if (l == locations.end()) continue;
      for (const auto& line : l->second->lines) names.push_back(functions[line.function_id]);
    }
    double ns = static_cast<double>(s.values[static_cast<size_t>(index)]);
    tally.Add(names, ns);
    r.total_ns += ns;
    r.samples += count_index >= 0 && static_cast<size_t>(count_index) < s.values.size()
                     ? static_cast<size_t>(std::max<int64_t>(s.values[count_index], 0))
                     : 1;
  }
  for (auto& [_, f] : tally.by_name) r.functions.push_back(std::move(f));
  return r;
}

std::string Percent(double part, double whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%5.1f%%", whole > 0 ? 100.0 * part / whole : 0.0);
  return buf;
}

std::string Ms(double ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%10.1f ms", ns / 1e6);
  return buf;
}

}  // namespace

Result<TraceReport> BuildTraceReport(const std::string& bytes) {
  size_t first = bytes.find_first_not_of(" \t\r\n");
  Result<TraceReport> r = Error::Invalid("empty");
  if (first != std::string::npos && bytes[first] == '{') {
    auto j = nlohmann::json::parse(bytes, nullptr, false);
    if (j.is_discarded()) return Error::Invalid("not JSON, not a trace file");
    if (j.contains("traceEvents")) {
      return Error::Invalid(
          "a Chrome trace file: open it in Perfetto UI; report reads speedscope and pprof files");
    }
    r = FromSpeedscope(j);
  } else {
    auto p = pprof::ParseProfile(bytes);
    if (!p) return p.error();
    r = FromPprof(*p);
  }
  if (r) {
    std::stable_sort(
        r->functions.begin(), r->functions.end(),
        [](const FunctionTime& a, const FunctionTime& b) { return a.self_ns > b.self_ns; });
  }
  return r;
}

std::string FormatTraceReport(const TraceReport& r, size_t top) {
  std::string out;
  char head[160];
  std::snprintf(head, sizeof head, "%s: %zu samples, %.1f ms%s\n", r.format.c_str(), r.samples,
                r.total_ns / 1e6,
                r.threads ? (" in " + std::to_string(r.threads) + " thread(s)").c_str() : "");
  out += head;
  out += "\nBy self time:\n";
  for (size_t i = 0; i < r.functions.size() && i < top; ++i) {
    const auto& f = r.functions[i];
    if (f.self_ns <= 0) break;
    out += "  " + Ms(f.self_ns) + " " + Percent(f.self_ns, r.total_ns) + "  " +
           ForTerminal(f.name) + "\n";
  }
  std::vector<const FunctionTime*> by_total;
  for (const auto& f : r.functions) by_total.push_back(&f);
  std::stable_sort(
      by_total.begin(), by_total.end(),
      [](const FunctionTime* a, const FunctionTime* b) { return a->total_ns > b->total_ns; });
  out += "\nBy total time (self and callees):\n";
  for (size_t i = 0; i < by_total.size() && i < top; ++i) {
    out += "  " + Ms(by_total[i]->total_ns) + " " + Percent(by_total[i]->total_ns, r.total_ns) +
           "  " + ForTerminal(by_total[i]->name) + "\n";
  }
  return out;
}

}  // namespace cppdiag::cli::trace
