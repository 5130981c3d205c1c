// The heap-snapshot command's reply (docs/protocol.md): the live sampled heap
// (heap::HeapProfile) as JSON, pcs as numbers, and back. Shared by the
// server's handler and the CLI.
#pragma once

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "diag/heap/heap_profile.h"

namespace cppdiag::ipc {

// {"sample_period_bytes", "time_unix_ns", "total_allocated_bytes",
//  "total_freed_bytes", "stacks": [{"pcs": [...], "sampled_count",
//  "sampled_bytes", "estimated_count", "estimated_bytes"}],
//  "mappings": [{"start", "end", "offset", "path", "build_id"}]}
nlohmann::json HeapProfileToJson(const heap::HeapProfile& profile);

// Parses a reply; fails with a one-line reason on a field of the wrong type.
Result<heap::HeapProfile> HeapProfileFromJson(const nlohmann::json& json);

}  // namespace cppdiag::ipc
