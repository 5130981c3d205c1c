// libcppdiag's entry point: StartRuntime() reads the CPPDIAG_* environment and
// starts what it asks for (crash handler, heap hard limit, pre-OOM watchdog,
// diagnostic server). A service calls it first thing in main(); the preload
// library calls it from a constructor.
//
//   int main() {
//     auto rt = cppdiag::StartRuntime();
//     if (!rt) { fprintf(stderr, "%s\n", rt.error().message().c_str()); return 2; }
//     ...
//   }
#pragma once

#include <cstdint>
#include <optional>

#include "common/cgroup.h"
#include "diag/config.h"

namespace cppdiag {

struct RuntimeInfo {
  DiagConfig config;
  // The heap hard limit in bytes, once resolved against the cgroup limit;
  // nullopt when off (or a percentage with no cgroup limit to take it of).
  std::optional<uint64_t> heap_hard_limit_bytes;
  // The memory cgroup as it was at start (nullopt when none was found).
  std::optional<CgroupMemory> cgroup;
};

// Starts once; later calls return the first result. `default_heap_limit`
// applies when CPPDIAG_HEAP_HARD_LIMIT is unset. Fails with a one-line reason
// on a malformed variable.
Result<const RuntimeInfo*> StartRuntime(std::optional<SizeOrPercent> default_heap_limit = {});

// The running runtime, or nullptr before StartRuntime succeeded.
const RuntimeInfo* CurrentRuntime();

}  // namespace cppdiag
