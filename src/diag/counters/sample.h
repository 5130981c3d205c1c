// One reading of a process's counters, as the socket's counters command
// returns it and as the CLI keeps it between refreshes.
//
// Wire form (the reply's payload; docs/protocol.md):
//   {"pid": 42, "monotonic_ns": 123456789, "unix_ns": 1795000000000000000,
//    "values": {"cppdiag_process_resident_memory_bytes": 10485760, ...}}
// A counter the target cannot measure (no cgroup limit, profiler off...) is
// absent from "values", never reported as 0.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cppdiag::counters {

struct Sample {
  pid_t pid = 0;
  int64_t monotonic_ns = 0;  // CLOCK_MONOTONIC in the target: rates use it
  int64_t unix_ns = 0;       // CLOCK_REALTIME in the target: for timestamps
  // By series name (catalog.h); names the catalog does not know are kept.
  std::map<std::string, double, std::less<>> values;

  std::optional<double> Get(std::string_view name) const {
    auto it = values.find(name);
    return it == values.end() ? std::nullopt : std::optional<double>(it->second);
  }
};

nlohmann::json SampleToJson(const Sample& sample);

// Checks the shape: numbers where numbers belong; fails with a one-line reason.
Result<Sample> SampleFromJson(const nlohmann::json& json);

}  // namespace cppdiag::counters
