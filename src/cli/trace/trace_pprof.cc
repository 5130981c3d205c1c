#include <map>
#include <vector>

#include "cli/heap/pprof_locations.h"
#include "cli/trace/trace_model.h"

namespace cppdiag::cli::trace {

pprof::Profile ToPprof(const ipc::TraceData& data, heap::Symbolizer& symbolizer) {
  pprof::Profile p;
  const std::string kind = data.profile == "wall" ? "wall" : "cpu";
  p.sample_types = {{"samples", "count"}, {kind, "nanoseconds"}};
  p.default_sample_type = kind;
  p.period_type = {kind, "nanoseconds"};
  p.period = static_cast<int64_t>(data.period_ns);
  p.time_nanos = static_cast<int64_t>(data.start_unix_ns);
  if (data.end_monotonic_ns > data.start_monotonic_ns) {
    p.duration_nanos = static_cast<int64_t>(data.end_monotonic_ns - data.start_monotonic_ns);
  }
  p.comments.push_back("cppdiag trace: " + kind + " profile at " + std::to_string(data.rate_hz) +
                       " Hz");
  p.comments.push_back("lost_samples=" + std::to_string(data.lost_samples));

  heap::ProfileLocations where(p, symbolizer);
  std::map<std::vector<uint64_t>, size_t> sample_of;  // by location ids
  for (const auto& s : data.samples) {
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < s.pcs.size(); ++i) {
      if (s.pcs[i] != 0) ids.push_back(where.LocationOf(FrameAddress(s.pcs, i)));
    }
    auto [it, inserted] = sample_of.try_emplace(ids, p.samples.size());
    if (inserted) p.samples.push_back({ids, {0, 0}});
    p.samples[it->second].values[0] += s.weight;
    p.samples[it->second].values[1] += static_cast<int64_t>(s.weight * data.period_ns);
  }
  where.Finish();
  return p;
}

}  // namespace cppdiag::cli::trace
