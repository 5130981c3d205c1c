// A trace as the formats write it: the target's raw samples (ipc::TraceData)
// symbolized here, out of process, into frames shared by every sample, each
// sample a stack of frame indices (root first), grouped by thread.
//
//   heap::Symbolizer sym(data.mappings, "/proc/1234/root");
//   SymbolizedTrace t = SymbolizeTrace(std::move(data), SymbolizerResolver(sym));
//   std::string json = ToSpeedscope(t, "leakapp (1234)");
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cli/heap/pprof.h"
#include "cli/heap/symbolizer.h"
#include "diag/ipc/trace_data.h"

namespace cppdiag::cli::trace {

struct TraceFrame {
  std::string name;  // demangled function, or "0x... in libfoo.so"
  std::string file;
  int64_t line = 0;  // the first line seen for it
};

struct SymbolizedTrace {
  ipc::TraceData data;
  std::vector<TraceFrame> frames;             // shared by every thread
  std::vector<std::vector<uint32_t>> stacks;  // per sample of data.samples: root first
  // Threads in tid order with the indexes of their samples (time order).
  std::map<pid_t, std::vector<size_t>> samples_by_thread;
  // Per heap sample of data.heap_samples (time order): root first.
  std::vector<std::vector<uint32_t>> heap_stacks;
  std::string ThreadName(pid_t tid) const;  // "worker (1235)"
};

// Resolves one address (already adjusted: pc - 1 for return addresses).
using Resolver = std::function<heap::SymbolizedAddress(uint64_t)>;
Resolver SymbolizerResolver(heap::Symbolizer& symbolizer);

// The address that names a sample's frame `i`: the interrupted pc itself
// for i == 0, the call instruction (return address - 1) above it.
inline uint64_t FrameAddress(const std::vector<uint64_t>& pcs, size_t i) {
  return i == 0 ? pcs[0] : pcs[i] - 1;
}

SymbolizedTrace SymbolizeTrace(ipc::TraceData data, const Resolver& resolve);

// speedscope's file format (https://www.speedscope.app/file-format-schema.json):
// one "sampled" profile per thread, weights in nanoseconds, frames shared;
// with heap samples, one more profile of them weighted in estimated bytes.
// speedscope has no counters or markers: those are left out.
std::string ToSpeedscope(const SymbolizedTrace& trace, const std::string& name);

// Chrome's Trace Event Format (JSON object form), as Perfetto UI and
// chrome://tracing open it: each thread's samples as nested complete ("X")
// slices, thread names as metadata ("M"), counters as "C" events, the
// trace's start and end and lost samples as instant ("i") events, each heap
// sample as an instant event on its thread (size and stack in args) with a
// running total as a counter, markers (dumps) as global instant events.
std::string ToChromium(const SymbolizedTrace& trace, pid_t pid, const std::string& process_name);

// A pprof CPU profile: sample types samples/count and cpu/nanoseconds (wall:
// wall/nanoseconds), period_type the same, one sample per distinct stack.
pprof::Profile ToPprof(const ipc::TraceData& data, heap::Symbolizer& symbolizer);

}  // namespace cppdiag::cli::trace
