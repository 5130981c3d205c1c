// A heap snapshot of a process that embeds libcppdiag, asked over its
// diagnostic socket and written here (symbolized out of process) as a
// gzipped pprof profile: what `cppdiag heap snapshot` and `cppdiag monitor
// --action heap-snapshot` write.
//
//   auto done = TakeHeapSnapshot(pid, "/dumps/heap.pb.gz", /*overwrite=*/false);
//   if (done) ... done->stacks, done->live_bytes;
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace cppdiag::cli {

struct HeapSnapshotDone {
  std::string name;  // the target's name
  size_t stacks = 0;
  double live_bytes = 0, live_objects = 0;  // estimated from the samples
  uint64_t sample_period_bytes = 0;
};

// Errors say why in one line: no diagnostic socket (no libcppdiag), the
// profiler off, the target exiting meanwhile, `output` existing.
Result<HeapSnapshotDone> TakeHeapSnapshot(pid_t pid, const std::string& output, bool overwrite);

}  // namespace cppdiag::cli
