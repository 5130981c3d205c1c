#include "cli/trace/trace_model.h"

#include <algorithm>
#include <unordered_map>

namespace cppdiag::cli::trace {

Resolver SymbolizerResolver(heap::Symbolizer& symbolizer) {
  return [&symbolizer](uint64_t address) { return symbolizer.Symbolize(address); };
}

std::string SymbolizedTrace::ThreadName(pid_t tid) const {
  for (const auto& t : data.threads) {
    if (t.tid == tid && !t.name.empty()) return t.name + " (" + std::to_string(tid) + ")";
  }
  return "thread " + std::to_string(tid);
}

SymbolizedTrace SymbolizeTrace(ipc::TraceData data, const Resolver& resolve) {
  SymbolizedTrace t;
  t.data = std::move(data);
  // Frames by function and file: every pc of a function is one frame, as in
  // a flame graph; the line is the first one seen.
  std::map<std::pair<std::string, std::string>, uint32_t> frame_of;
  // Per address: its frames, outermost first (the function, then what was
  // inlined into it).
  std::unordered_map<uint64_t, std::vector<uint32_t>> by_address;
  auto frames_at = [&](uint64_t address) -> const std::vector<uint32_t>& {
    auto [it, inserted] = by_address.try_emplace(address);
    if (!inserted) return it->second;
    heap::SymbolizedAddress where = resolve(address);
    for (auto f = where.frames.rbegin(); f != where.frames.rend(); ++f) {
      auto [fit, added] =
          frame_of.try_emplace({f->function, f->file}, static_cast<uint32_t>(t.frames.size()));
      if (added) t.frames.push_back({f->function, f->file, f->line});
      it->second.push_back(fit->second);
    }
    return it->second;
  };
  std::stable_sort(
      t.data.samples.begin(), t.data.samples.end(),
      [](const ipc::TraceSample& a, const ipc::TraceSample& b) { return a.time_ns < b.time_ns; });
  t.stacks.reserve(t.data.samples.size());
  for (size_t i = 0; i < t.data.samples.size(); ++i) {
    const auto& pcs = t.data.samples[i].pcs;
    std::vector<uint32_t> stack;
    for (size_t k = pcs.size(); k-- > 0;) {
      if (pcs[k] == 0) continue;
      const auto& fs = frames_at(FrameAddress(pcs, k));
      stack.insert(stack.end(), fs.begin(), fs.end());
    }
    t.stacks.push_back(std::move(stack));
    t.samples_by_thread[t.data.samples[i].tid].push_back(i);
  }
  std::stable_sort(t.data.heap_samples.begin(), t.data.heap_samples.end(),
                   [](const ipc::TraceHeapSample& a, const ipc::TraceHeapSample& b) {
                     return a.time_ns < b.time_ns;
                   });
  t.heap_stacks.reserve(t.data.heap_samples.size());
  for (const auto& h : t.data.heap_samples) {
    std::vector<uint32_t> stack;  // every pc a return address: name its call
    for (size_t k = h.pcs.size(); k-- > 0;) {
      if (h.pcs[k] == 0) continue;
      const auto& fs = frames_at(h.pcs[k] - 1);
      stack.insert(stack.end(), fs.begin(), fs.end());
    }
    t.heap_stacks.push_back(std::move(stack));
  }
  std::stable_sort(
      t.data.markers.begin(), t.data.markers.end(),
      [](const ipc::TraceMarker& a, const ipc::TraceMarker& b) { return a.time_ns < b.time_ns; });
  return t;
}

}  // namespace cppdiag::cli::trace
