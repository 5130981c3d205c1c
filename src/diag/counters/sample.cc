#include "diag/counters/sample.h"

#include <cmath>

namespace cppdiag::counters {

nlohmann::json SampleToJson(const Sample& sample) {
  nlohmann::json values = nlohmann::json::object();
  for (const auto& [name, value] : sample.values) {
    // Whole numbers (bytes, counts) as integers: exact, and what a reader expects.
    if (value == std::floor(value) && std::fabs(value) < 9.0e15) {
      values[name] = static_cast<int64_t>(value);
    } else {
      values[name] = value;
    }
  }
  return {{"pid", sample.pid},
          {"monotonic_ns", sample.monotonic_ns},
          {"unix_ns", sample.unix_ns},
          {"values", std::move(values)}};
}

Result<Sample> SampleFromJson(const nlohmann::json& json) {
  auto bad = [](const std::string& what) {
    return Error::Invalid("malformed counters reply: " + what);
  };
  if (!json.is_object()) return bad("not an object");
  Sample s;
  for (const char* key : {"monotonic_ns", "unix_ns"}) {
    if (!json.contains(key) || !json.at(key).is_number_integer()) {
      return bad(std::string("no integer \"") + key + "\"");
    }
  }
  s.monotonic_ns = json.at("monotonic_ns").get<int64_t>();
  s.unix_ns = json.at("unix_ns").get<int64_t>();
  if (json.contains("pid") && json.at("pid").is_number_integer()) {
    s.pid = json.at("pid").get<pid_t>();
  }
  if (!json.contains("values") || !json.at("values").is_object()) return bad("no \"values\"");
  for (const auto& [name, value] : json.at("values").items()) {
    if (!value.is_number()) return bad("\"" + name + "\" is not a number");
    s.values[name] = value.get<double>();
  }
  return s;
}

}  // namespace cppdiag::counters
