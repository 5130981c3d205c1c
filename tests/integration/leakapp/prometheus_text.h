// A strict reader of the Prometheus text exposition format, for tests: every
// sample's metric must have been introduced by # HELP and # TYPE lines, and
// every value must be a number.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cppdiag::testing {

struct PrometheusSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PrometheusText {
  std::map<std::string, std::string> help;  // by family name
  std::map<std::string, std::string> type;  // by family name: "gauge", "counter", ...
  std::vector<PrometheusSample> samples;

  // The value of the sample `name` with exactly `labels`, if present.
  std::optional<double> Value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const;
};

// Parses `text`; on the first malformed line returns nullopt and sets `error`
// to the line and what is wrong with it.
std::optional<PrometheusText> ParsePrometheusText(std::string_view text, std::string* error);

}  // namespace cppdiag::testing
