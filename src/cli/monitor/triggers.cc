#include "cli/monitor/triggers.h"

#include <algorithm>
#include <cstdio>

#include "common/parse.h"

namespace cppdiag::cli::monitor {

PolledTrigger::PolledTrigger(Kind kind, std::vector<double> thresholds)
    : kind_(kind), thresholds_(std::move(thresholds)) {
  static const char* const kNames[] = {
      "memory", "memory-below", "cgroup-memory", "cpu", "cpu-below", "threads", "fds"};
  name_ = kNames[static_cast<int>(kind)];
  below_ = kind == Kind::kMemoryBelow || kind == Kind::kCpuBelow;
  list_ = kind == Kind::kMemory;
  std::sort(thresholds_.begin(), thresholds_.end());
}

std::optional<double> PolledTrigger::Value(const Sample& s) const {
  switch (kind_) {
    case Kind::kMemory:
    case Kind::kMemoryBelow:
      return s.rss;
    case Kind::kCgroupMemory:
      return s.cgroup_pct;
    case Kind::kCpu:
    case Kind::kCpuBelow:
      return s.cpu_pct;
    case Kind::kThreads:
      return s.threads;
    case Kind::kFds:
      return s.fds;
  }
  return std::nullopt;
}

std::string PolledTrigger::Show(double v) const {
  if (kind_ == Kind::kMemory || kind_ == Kind::kMemoryBelow) {
    return FormatBytes(static_cast<uint64_t>(std::max(v, 0.0)));
  }
  char buf[32];
  bool pct = kind_ == Kind::kCgroupMemory || kind_ == Kind::kCpu || kind_ == Kind::kCpuBelow;
  std::snprintf(buf, sizeof buf, pct ? "%.1f%%" : "%.0f", v);
  return buf;
}

std::optional<Firing> PolledTrigger::Check(const Sample& s, Clock::time_point now,
                                           std::chrono::nanoseconds sustain) {
  if (done()) return std::nullopt;
  std::optional<double> v = Value(s);
  const double threshold = thresholds_[next_];
  if (!v || (below_ ? *v >= threshold : *v < threshold)) {
    holding_since_.reset();
    return std::nullopt;
  }
  if (!holding_since_) holding_since_ = now;
  if (now - *holding_since_ < sustain) return std::nullopt;
  return Firing{name_, Show(*v), below_ ? "<" : ">=", Show(threshold)};
}

void PolledTrigger::Fired() {
  if (list_) ++next_;
  holding_since_.reset();
}

Result<std::vector<PolledTrigger>> BuildPolledTriggers(const MonitorOptions& o) {
  using Kind = PolledTrigger::Kind;
  std::vector<PolledTrigger> out;
  if (!o.memory.empty()) {
    std::vector<double> sizes;
    for (const std::string& text : o.memory) {
      auto size = ParseSize(text);
      if (!size) return Error(EINVAL, "", "--memory: " + size.error().message());
      sizes.push_back(static_cast<double>(*size));
    }
    out.emplace_back(Kind::kMemory, sizes);
  }
  if (!o.memory_below.empty()) {
    auto size = ParseSize(o.memory_below);
    if (!size) return Error(EINVAL, "", "--memory-below: " + size.error().message());
    out.emplace_back(Kind::kMemoryBelow, std::vector<double>{static_cast<double>(*size)});
  }
  if (o.cgroup_pct) out.emplace_back(Kind::kCgroupMemory, std::vector<double>{*o.cgroup_pct});
  if (o.cpu_pct) out.emplace_back(Kind::kCpu, std::vector<double>{*o.cpu_pct});
  if (o.cpu_below_pct) out.emplace_back(Kind::kCpuBelow, std::vector<double>{*o.cpu_below_pct});
  if (o.threads) out.emplace_back(Kind::kThreads, std::vector<double>{double(*o.threads)});
  if (o.fds) out.emplace_back(Kind::kFds, std::vector<double>{double(*o.fds)});
  return out;
}

}  // namespace cppdiag::cli::monitor
