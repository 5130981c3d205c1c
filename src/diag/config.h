// libcppdiag's configuration, read once from the environment at start
// (the CPPDIAG_* variables of DESIGN.md).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/parse.h"
#include "common/status.h"
#include "diag/dump/dump_type.h"

namespace cppdiag {

struct DiagConfig {
  bool enable_diagnostics = true;                     // CPPDIAG_ENABLE_DIAGNOSTICS
  bool enable_dump_on_crash = false;                  // CPPDIAG_ENABLE_DUMP_ON_CRASH
  DumpType dump_type = DumpType::kHeap;               // CPPDIAG_DUMP_TYPE
  std::string dump_name;                              // CPPDIAG_DUMP_NAME (a template)
  std::string dump_dir;                               // CPPDIAG_DUMP_DIR
  std::optional<SizeOrPercent> heap_hard_limit;       // CPPDIAG_HEAP_HARD_LIMIT; nullopt = off
  std::optional<double> oom_dump_threshold;           // CPPDIAG_OOM_DUMP_THRESHOLD, percent
  uint64_t heap_sample_bytes = uint64_t{512} * 1024;  // CPPDIAG_HEAP_SAMPLE_BYTES; 0 = off
  std::string tmpdir = "/tmp";                        // TMPDIR
};

// Reads `env` (the process environment when empty); fails with one line naming
// the variable on a malformed value. `default_heap_limit` applies when
// CPPDIAG_HEAP_HARD_LIMIT is unset (leakapp passes "75%").
Result<DiagConfig> ParseDiagConfig(const std::map<std::string, std::string>& env,
                                   std::optional<SizeOrPercent> default_heap_limit = {});

// The process environment as a map.
std::map<std::string, std::string> CurrentEnvironment();

}  // namespace cppdiag
