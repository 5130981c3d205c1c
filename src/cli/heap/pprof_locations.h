// The mappings, locations and functions of a pprof profile built from
// addresses: each address symbolized once (its inlined frames as lines),
// each function once, shared by the heap snapshot and the trace profiles.
//
//   ProfileLocations where(profile, symbolizer);   // adds the mappings
//   sample.location_ids.push_back(where.LocationOf(pc - 1));
//   where.Finish();                                 // the mappings' has_* flags
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>

#include "cli/heap/pprof.h"
#include "cli/heap/symbolizer.h"

namespace cppdiag::cli::heap {

class ProfileLocations {
 public:
  ProfileLocations(pprof::Profile& profile, Symbolizer& symbolizer);

  // The id of the location of `address` (a call site: a return address - 1).
  uint64_t LocationOf(uint64_t address);
  // Says, per mapping, whether symbols and lines were found. Call once, last.
  void Finish();

 private:
  uint64_t FunctionOf(const SymbolFrame& f);

  pprof::Profile& profile_;
  Symbolizer& symbolizer_;
  std::unordered_map<uint64_t, uint64_t> location_of_;
  std::map<std::pair<std::string, std::string>, uint64_t> function_of_;
};

}  // namespace cppdiag::cli::heap
