#include <map>
#include <unordered_map>

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

  const auto& maps = symbolizer.mappings();
  for (size_t i = 0; i < maps.size(); ++i) {
    p.mappings.push_back({.id = i + 1,
                          .memory_start = maps[i].start,
                          .memory_limit = maps[i].end,
                          .file_offset = maps[i].offset,
                          .filename = maps[i].path,
                          .build_id = maps[i].build_id});
  }
  std::unordered_map<uint64_t, uint64_t> location_of;
  std::map<std::pair<std::string, std::string>, uint64_t> function_ids;
  auto function_id = [&](const heap::SymbolFrame& f) {
    auto [it, inserted] = function_ids.try_emplace({f.function, f.file}, p.functions.size() + 1);
    if (inserted) p.functions.push_back({it->second, f.function, f.system_name, f.file, 0});
    return it->second;
  };
  std::map<std::vector<uint64_t>, size_t> sample_of;  // by location ids
  for (const auto& s : data.samples) {
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < s.pcs.size(); ++i) {
      if (s.pcs[i] == 0) continue;
      uint64_t address = FrameAddress(s.pcs, i);
      auto [it, inserted] = location_of.try_emplace(address, p.locations.size() + 1);
      if (inserted) {
        heap::SymbolizedAddress where = symbolizer.Symbolize(address);
        pprof::Location loc{.id = it->second, .address = address};
        if (where.mapping_index >= 0) {
          loc.mapping_id = static_cast<uint64_t>(where.mapping_index) + 1;
        }
        for (const auto& f : where.frames) loc.lines.push_back({function_id(f), f.line});
        p.locations.push_back(std::move(loc));
      }
      ids.push_back(it->second);
    }
    auto [it, inserted] = sample_of.try_emplace(ids, p.samples.size());
    if (inserted) p.samples.push_back({ids, {0, 0}});
    p.samples[it->second].values[0] += s.weight;
    p.samples[it->second].values[1] += static_cast<int64_t>(s.weight * data.period_ns);
  }
  for (size_t i = 0; i < maps.size(); ++i) {
    auto& m = p.mappings[i];
    m.has_functions = symbolizer.HasSymbols(i);
    m.has_filenames = m.has_line_numbers = m.has_inline_frames = symbolizer.HasLines(i);
  }
  return p;
}

}  // namespace cppdiag::cli::trace
