#include "cli/heap/pprof_locations.h"

namespace cppdiag::cli::heap {

ProfileLocations::ProfileLocations(pprof::Profile& profile, Symbolizer& symbolizer)
    : profile_(profile), symbolizer_(symbolizer) {
  const auto& maps = symbolizer.mappings();
  for (size_t i = 0; i < maps.size(); ++i) {
    profile_.mappings.push_back({.id = i + 1,
                                 .memory_start = maps[i].start,
                                 .memory_limit = maps[i].end,
                                 .file_offset = maps[i].offset,
                                 .filename = maps[i].path,
                                 .build_id = maps[i].build_id});
  }
}

uint64_t ProfileLocations::FunctionOf(const SymbolFrame& f) {
  auto [it, inserted] =
      function_of_.try_emplace({f.function, f.file}, profile_.functions.size() + 1);
  if (inserted) profile_.functions.push_back({it->second, f.function, f.system_name, f.file, 0});
  return it->second;
}

uint64_t ProfileLocations::LocationOf(uint64_t address) {
  auto [it, inserted] = location_of_.try_emplace(address, profile_.locations.size() + 1);
  if (!inserted) return it->second;
  SymbolizedAddress where = symbolizer_.Symbolize(address);
  pprof::Location loc{.id = it->second, .address = address};
  if (where.mapping_index >= 0) loc.mapping_id = static_cast<uint64_t>(where.mapping_index) + 1;
  for (const auto& f : where.frames) loc.lines.push_back({FunctionOf(f), f.line});
  profile_.locations.push_back(std::move(loc));
  return it->second;
}

void ProfileLocations::Finish() {
  for (size_t i = 0; i < profile_.mappings.size(); ++i) {
    auto& m = profile_.mappings[i];
    m.has_functions = symbolizer_.HasSymbols(i);
    m.has_filenames = m.has_line_numbers = m.has_inline_frames = symbolizer_.HasLines(i);
  }
}

}  // namespace cppdiag::cli::heap
