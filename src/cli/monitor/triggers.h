// The polled triggers of `cppdiag monitor`: a value of each Sample against
// a threshold, above (--memory, --cgroup-memory, --cpu, --threads, --fds) or
// below (--memory-below, --cpu-below). A trigger fires when its condition
// has held for `sustain` (ProcDump's -s: consecutive seconds, measured from
// the first sample where it held); --memory's list fires once per size, in
// ascending order; the others fire again when the condition holds again
// after a dump (each dump counts towards -n).
//
//   auto triggers = BuildPolledTriggers(options);
//   for (PolledTrigger& t : *triggers)
//     if (auto f = t.Check(sample, now, sustain)) ... dump, then t.Fired();
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "cli/monitor/options.h"
#include "cli/monitor/sample.h"
#include "common/status.h"

namespace cppdiag::cli::monitor {

// What made a dump: "memory", "612.0 MiB", ">=", "512.0 MiB".
struct Firing {
  std::string trigger;
  std::string value;
  std::string op;         // ">=", "<", or "" (signal, exit, timer)
  std::string threshold;  // "" when op is ""
};

class PolledTrigger {
 public:
  enum class Kind { kMemory, kMemoryBelow, kCgroupMemory, kCpu, kCpuBelow, kThreads, kFds };
  PolledTrigger(Kind kind, std::vector<double> thresholds);

  // A firing when the condition has held for `sustain` up to `now`.
  std::optional<Firing> Check(const Sample& s, Clock::time_point now,
                              std::chrono::nanoseconds sustain);
  // After the dump of a firing: a list moves to its next size; the
  // condition must be seen again (for `sustain`) before the next firing.
  void Fired();
  // Every size of the list has fired (never, for a single threshold).
  bool done() const { return next_ >= thresholds_.size(); }
  const std::string& name() const { return name_; }

 private:
  std::optional<double> Value(const Sample& s) const;
  std::string Show(double v) const;

  Kind kind_;
  std::string name_;
  bool below_;
  std::vector<double> thresholds_;
  size_t next_ = 0;
  bool list_;
  std::optional<Clock::time_point> holding_since_;
};

// The polled triggers `o` asks for (none is an empty list); a size that
// does not parse is an error ("--memory: ...").
Result<std::vector<PolledTrigger>> BuildPolledTriggers(const MonitorOptions& o);

}  // namespace cppdiag::cli::monitor
