// speedscope's file format: https://www.speedscope.app/file-format-schema.json
// (the speedscope npm package's dist/file-format-schema.json, against which
// the tests validate what this writes).
#include <cmath>
#include <nlohmann/json.hpp>

#include "cli/trace/trace_model.h"

namespace cppdiag::cli::trace {

std::string ToSpeedscope(const SymbolizedTrace& t, const std::string& name) {
  nlohmann::json frames = nlohmann::json::array();
  for (const auto& f : t.frames) {
    nlohmann::json j = {{"name", f.name}};
    if (!f.file.empty()) j["file"] = f.file;
    if (f.line > 0) j["line"] = f.line;
    frames.push_back(std::move(j));
  }
  const uint64_t period = t.data.period_ns;
  const uint64_t origin = t.data.start_monotonic_ns;
  uint64_t end = t.data.end_monotonic_ns > origin ? t.data.end_monotonic_ns - origin : 0;
  nlohmann::json profiles = nlohmann::json::array();
  for (const auto& [tid, indexes] : t.samples_by_thread) {
    nlohmann::json samples = nlohmann::json::array();
    nlohmann::json weights = nlohmann::json::array();
    uint64_t start_value = end, end_value = 0;
    for (size_t i : indexes) {
      const auto& s = t.data.samples[i];
      uint64_t at = s.time_ns > origin ? s.time_ns - origin : 0;
      uint64_t weight = static_cast<uint64_t>(s.weight) * period;
      start_value = std::min(start_value, at > weight ? at - weight : 0);
      end_value = std::max(end_value, at);
      samples.push_back(t.stacks[i]);
      weights.push_back(weight);
    }
    profiles.push_back({{"type", "sampled"},
                        {"name", t.ThreadName(tid)},
                        {"unit", "nanoseconds"},
                        {"startValue", start_value},
                        {"endValue", std::max(end_value, start_value)},
                        {"samples", std::move(samples)},
                        {"weights", std::move(weights)}});
  }
  if (!t.data.heap_samples.empty()) {
    nlohmann::json samples = nlohmann::json::array();
    nlohmann::json weights = nlohmann::json::array();
    uint64_t total = 0;
    for (size_t i = 0; i < t.data.heap_samples.size(); ++i) {
      auto bytes = static_cast<uint64_t>(std::llround(t.data.heap_samples[i].estimated_bytes));
      samples.push_back(t.heap_stacks[i]);
      weights.push_back(bytes);
      total += bytes;
    }
    profiles.push_back({{"type", "sampled"},
                        {"name", "heap allocations (sampled, estimated bytes)"},
                        {"unit", "bytes"},
                        {"startValue", 0},
                        {"endValue", total},
                        {"samples", std::move(samples)},
                        {"weights", std::move(weights)}});
  }
  nlohmann::json out = {
      {"$schema", "https://www.speedscope.app/file-format-schema.json"},
      {"name", name + " (" + t.data.profile + ", " + std::to_string(t.data.rate_hz) + " Hz)"},
      {"exporter", "cppdiag"},
      {"activeProfileIndex", 0},
      {"shared", {{"frames", std::move(frames)}}},
      {"profiles", std::move(profiles)}};
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace cppdiag::cli::trace
