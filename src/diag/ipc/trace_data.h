// The trace command's frames and reply (docs/protocol.md, "The trace
// command") as the client reads them: samples of raw pcs, the target's
// threads, counters readings and executable mappings, gathered from the
// progress frames and the reply into one TraceData.
//
//   TraceData data;
//   ipc::Call(ep, Command::kTrace, req, timeout,
//             [&](const nlohmann::json& f) { (void)AddTraceFrame(f, &data); });
//   AddTraceFrame(reply, &data);
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "diag/heap/heap_profile.h"
#include "diag/ipc/heap_sample_stream.h"

namespace cppdiag::ipc {

struct TraceSample {
  pid_t tid = 0;
  uint64_t time_ns = 0;       // the target's CLOCK_MONOTONIC
  uint32_t weight = 1;        // periods it stands for
  std::vector<uint64_t> pcs;  // pcs[0] the interrupted pc, then return addresses
};

struct TraceThread {
  pid_t tid = 0;
  std::string name;
  bool sampled = false;
  std::string why_not;
};

struct TraceCounters {
  uint64_t monotonic_ns = 0;
  std::vector<std::pair<std::string, double>> values;
};

struct TraceHeapSample {  // a sampled allocation (heap profiler on)
  pid_t tid = 0;
  uint64_t time_ns = 0;
  uint64_t bytes = 0;
  double estimated_bytes = 0;
  std::vector<uint64_t> pcs;  // return addresses, innermost first (pcs[0] the caller of malloc)
};

// NOLINTNEXTLINE(bugprone-exception-escape): json's default and move constructors do not throw
struct TraceMarker {  // a dump written during the trace, ...
  uint64_t time_ns = 0;
  std::string name;
  nlohmann::json args;
};

struct TraceData {
  std::string profile;  // "cpu" or "wall"
  uint32_t rate_hz = 0;
  uint64_t period_ns = 0;
  uint64_t start_monotonic_ns = 0, end_monotonic_ns = 0;
  uint64_t start_unix_ns = 0;
  std::string ended_by;  // duration, request, client (reply only)
  uint64_t lost_samples = 0;
  std::vector<TraceSample> samples;
  std::vector<TraceCounters> counters;
  std::vector<TraceHeapSample> heap_samples;  // each with its stack's pcs
  HeapStackTable heap_stacks;                 // the stacks received so far, by id
  uint64_t heap_samples_missed = 0;
  uint64_t heap_sample_period_bytes = 0;  // 0: the heap profiler was off (reply only)
  std::vector<TraceMarker> markers;
  uint64_t markers_missed = 0;
  std::vector<TraceThread> threads;         // reply only
  std::vector<heap::HeapMapping> mappings;  // reply only
  bool complete = false;                    // the reply was read
};

// Adds what one frame (a progress frame or the reply) carries. A malformed
// frame is an error and adds nothing. Heap samples come as stack ids and
// rows (heap_sample_stream.h), or, from an older target, as one
// "heap_samples" object each with its pcs.
Status AddTraceFrame(const nlohmann::json& frame, TraceData* data, bool is_reply = false);

}  // namespace cppdiag::ipc
