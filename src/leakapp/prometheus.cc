#include "leakapp/prometheus.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>

namespace leakapp {
namespace {

// HELP text escapes '\' and newlines; label values also escape '"'.
std::string Escape(const std::string& s, bool quote) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 9.0e15)
    return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

}  // namespace

std::string RenderPrometheusText(const std::vector<MetricFamily>& families) {
  std::string out;
  for (const auto& family : families) {
    if (family.samples.empty()) continue;
    out += fmt::format("# HELP {} {}\n", family.name, Escape(family.help, false));
    out += fmt::format("# TYPE {} {}\n", family.name,
                       family.type == MetricType::kCounter ? "counter" : "gauge");
    for (const auto& sample : family.samples) {
      out += family.name;
      if (!sample.labels.empty()) {
        out += '{';
        for (size_t i = 0; i < sample.labels.size(); ++i) {
          if (i > 0) out += ',';
          out += fmt::format("{}=\"{}\"", sample.labels[i].first,
                             Escape(sample.labels[i].second, true));
        }
        out += '}';
      }
      out += ' ';
      out += FormatValue(sample.value);
      out += '\n';
    }
  }
  return out;
}

}  // namespace leakapp
