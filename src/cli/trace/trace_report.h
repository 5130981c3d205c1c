// `cppdiag trace report`: the functions a trace file spends its time in, by
// self time (the sample's innermost frame) and total time (anywhere on the
// stack, counted once per sample however often it recurs), from a
// speedscope file or a pprof CPU/wall profile (ours or any tool's).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace cppdiag::cli::trace {

struct FunctionTime {
  std::string name;
  double self_ns = 0;
  double total_ns = 0;
};

struct TraceReport {
  std::string format;  // "speedscope" or "pprof"
  double total_ns = 0;
  size_t samples = 0;
  size_t threads = 0;                   // speedscope profiles (0 for pprof)
  std::vector<FunctionTime> functions;  // by self time, most first
};

// The report of the file's bytes: a speedscope JSON file or a pprof profile
// (gzipped or not). Fails with one line on anything else.
Result<TraceReport> BuildTraceReport(const std::string& bytes);

// The text: totals, then the top `top` functions by self time and by total
// time, names escaped for the terminal.
std::string FormatTraceReport(const TraceReport& report, size_t top);

}  // namespace cppdiag::cli::trace
