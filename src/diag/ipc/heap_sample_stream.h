// The trace's heap samples on the wire (docs/protocol.md, "The trace
// command"): each distinct stack once per trace in "heap_stacks"
// ({"id", "pcs"}), then five numbers per sample in the flat array
// "heap_sample_rows": time_ns, tid, bytes, stack id, estimated_bytes.
// A target samples ~1,500 allocations a second from a few hundred stacks:
// sending the stack by id and no object per sample keeps the encoding off
// the service's CPU.
//
//   HeapSampleEncoder enc;                        // target, one per trace
//   if (enc.NeedsStack(id)) enc.AddStack(id, pcs, depth);
//   enc.AddSample(time_ns, tid, bytes, estimated, id);
//   enc.TakeInto(&frame);                         // each progress frame
//
//   HeapStackTable stacks;                        // client, one per trace
//   DecodeHeapSamples(frame, &stacks, &new_stacks, &samples);
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace cppdiag::ipc {

// Numbers per sample in "heap_sample_rows".
inline constexpr size_t kHeapRowFields = 5;
// What a client accepts (the target sends at most 48 frames; ids are below
// 16384): larger is a hostile or broken stream.
inline constexpr size_t kMaxHeapStackDepth = 256;
inline constexpr uint64_t kMaxHeapStackId = (uint64_t{1} << 24) - 1;

// Builds the two fields in the target. Normal context (allocates, per
// frame, not per sample: the rows array grows amortized).
class HeapSampleEncoder {
 public:
  // True when stack `id` was not yet sent in this trace.
  bool NeedsStack(uint32_t id) const { return id >= sent_.size() || !sent_[id]; }
  void AddStack(uint32_t id, const uint64_t* pcs, size_t depth);
  void AddSample(uint64_t time_ns, int32_t tid, uint64_t bytes, double estimated_bytes,
                 uint32_t stack);
  size_t samples() const { return rows_.size() / kHeapRowFields; }
  // Moves what was added since the last call into frame["heap_stacks"] and
  // frame["heap_sample_rows"] (both always present, maybe empty).
  void TakeInto(nlohmann::json* frame);

 private:
  std::vector<bool> sent_;
  nlohmann::json stacks_ = nlohmann::json::array();
  nlohmann::json::array_t rows_;
};

// The stacks a client has received in this trace, by the target's id.
using HeapStackTable = std::unordered_map<uint32_t, std::vector<uint64_t>>;

struct DecodedHeapSample {
  pid_t tid = 0;
  uint64_t time_ns = 0;
  uint64_t bytes = 0;
  double estimated_bytes = 0;
  uint32_t stack = 0;  // a key of the HeapStackTable
};

// Reads the two fields of one frame (absent: none). Stacks go to
// *new_stacks (not into `known`: the caller commits both only when the
// whole frame is good); a sample may name a stack of `known` or of the
// same frame. Bad input (a stack id sent twice or out of range, too deep a
// stack, a row cut short, a field of the wrong type, a sample naming an
// unknown stack) is a one-line error and the outputs are to be discarded.
Status DecodeHeapSamples(const nlohmann::json& frame, const HeapStackTable& known,
                         HeapStackTable* new_stacks, std::vector<DecodedHeapSample>* samples);

}  // namespace cppdiag::ipc
