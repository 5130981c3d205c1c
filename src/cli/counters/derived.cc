#include "cli/counters/derived.h"

#include "diag/counters/catalog.h"

namespace cppdiag::counters {

void AddDerived(const Sample* previous, Sample* current) {
  auto& v = current->values;
  auto usage = current->Get(names::kCgroupUsage);
  auto limit = current->Get(names::kCgroupLimit);
  if (usage && limit && *limit > 0) v[names::kCgroupPercent] = *usage * 100.0 / *limit;

  // Rates need two samples of the same process, in order.
  if (previous == nullptr || previous->pid != current->pid) return;
  double seconds = static_cast<double>(current->monotonic_ns - previous->monotonic_ns) / 1e9;
  if (seconds <= 0) return;
  auto delta = [&](const char* name) -> std::optional<double> {
    auto a = previous->Get(name);
    auto b = current->Get(name);
    if (!a || !b || *b < *a) return std::nullopt;  // a counter that went back: no rate
    return *b - *a;
  };
  if (auto bytes = delta(names::kHeapAllocated)) v[names::kAllocationRate] = *bytes / seconds;
  if (auto cpu = delta(names::kCpuSeconds)) {
    double percent = *cpu / seconds * 100.0;
    v[names::kCpuCorePercent] = percent;
    if (auto quota = current->Get(names::kCpuQuota); quota && *quota > 0) {
      v[names::kCpuQuotaPercent] = percent / *quota;
    }
  }
}

}  // namespace cppdiag::counters
