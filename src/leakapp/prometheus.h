// A minimal writer of the Prometheus text exposition format (version 0.0.4):
// every family gets its # HELP and # TYPE lines, then its samples.
//
//   std::vector<MetricFamily> families;
//   families.push_back({"leakapp_leaked_bytes", "Bytes leaked on purpose.",
//                       MetricType::kGauge, {{"", 1048576}}});
//   std::string text = RenderPrometheusText(families);
//   // # HELP leakapp_leaked_bytes Bytes leaked on purpose.
//   // # TYPE leakapp_leaked_bytes gauge
//   // leakapp_leaked_bytes 1048576
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace leakapp {

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType { kGauge, kCounter };

struct MetricSample {
  // Label pairs, e.g. {{"kind", "minor"}}; values are escaped when rendered.
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

struct MetricFamily {
  std::string name;  // [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<MetricSample> samples;
};

// Renders `families` in order. A family without samples is left out.
// Integral values are printed as integers, others in the shortest exact form.
std::string RenderPrometheusText(const std::vector<MetricFamily>& families);

}  // namespace leakapp
