#include "diag/ipc/heap_sample_stream.h"

#include <cmath>
#include <limits>
#include <string>

namespace cppdiag::ipc {

void HeapSampleEncoder::AddStack(uint32_t id, const uint64_t* pcs, size_t depth) {
  if (id >= sent_.size()) sent_.resize(static_cast<size_t>(id) + 1, false);
  sent_[id] = true;
  nlohmann::json::array_t p(pcs, pcs + depth);
  stacks_.push_back({{"id", id}, {"pcs", std::move(p)}});
}

void HeapSampleEncoder::AddSample(uint64_t time_ns, int32_t tid, uint64_t bytes,
                                  double estimated_bytes, uint32_t stack) {
  rows_.emplace_back(time_ns);
  rows_.emplace_back(tid);
  rows_.emplace_back(bytes);
  rows_.emplace_back(stack);
  rows_.emplace_back(estimated_bytes);
}

void HeapSampleEncoder::TakeInto(nlohmann::json* frame) {
  (*frame)["heap_stacks"] = std::move(stacks_);
  (*frame)["heap_sample_rows"] = std::move(rows_);
  stacks_ = nlohmann::json::array();
  rows_ = nlohmann::json::array_t();
}

namespace {

Error Bad(const std::string& what) { return Error::Invalid("malformed trace frame: " + what); }

// An unsigned JSON integer no larger than `max`.
bool Unsigned(const nlohmann::json& v, uint64_t max, uint64_t* out) {
  if (!v.is_number_unsigned()) return false;
  *out = v.get<uint64_t>();
  return *out <= max;
}

}  // namespace

Status DecodeHeapSamples(const nlohmann::json& frame, const HeapStackTable& known,
                         HeapStackTable* new_stacks, std::vector<DecodedHeapSample>* samples) {
  if (auto it = frame.find("heap_stacks"); it != frame.end()) {
    if (!it->is_array()) return Bad("heap_stacks is not an array");
    for (const auto& s : *it) {
      if (!s.is_object()) return Bad("a heap stack is not an object");
      auto id = s.find("id");
      auto pcs = s.find("pcs");
      uint64_t v = 0;
      if (id == s.end() || !Unsigned(*id, kMaxHeapStackId, &v)) {
        return Bad("a heap stack's id is missing or out of range");
      }
      const auto sid = static_cast<uint32_t>(v);
      if (known.count(sid) != 0 || new_stacks->count(sid) != 0) {
        return Bad("heap stack id " + std::to_string(sid) + " sent twice");
      }
      if (pcs == s.end() || !pcs->is_array()) {
        return Bad("heap stack " + std::to_string(sid) + " has no pcs array");
      }
      if (pcs->size() > kMaxHeapStackDepth) {
        return Bad("heap stack " + std::to_string(sid) + " is " + std::to_string(pcs->size()) +
                   " frames deep (at most " + std::to_string(kMaxHeapStackDepth) + ")");
      }
      std::vector<uint64_t> out;
      out.reserve(pcs->size());
      for (const auto& pc : *pcs) {
        if (!Unsigned(pc, std::numeric_limits<uint64_t>::max(), &v)) {
          return Bad("heap stack " + std::to_string(sid) + " has a pc that is not an address");
        }
        out.push_back(v);
      }
      (*new_stacks)[sid] = std::move(out);
    }
  }
  auto rows = frame.find("heap_sample_rows");
  if (rows == frame.end()) return OkStatus();
  if (!rows->is_array()) return Bad("heap_sample_rows is not an array");
  if (rows->size() % kHeapRowFields != 0) {
    return Bad("heap_sample_rows has " + std::to_string(rows->size()) +
               " numbers, not a multiple of " + std::to_string(kHeapRowFields) +
               " (a row cut short)");
  }
  const auto& r = rows->get_ref<const nlohmann::json::array_t&>();
  samples->reserve(samples->size() + r.size() / kHeapRowFields);
  for (size_t i = 0; i < r.size(); i += kHeapRowFields) {
    DecodedHeapSample d;
    uint64_t tid = 0, stack = 0;
    const size_t row = i / kHeapRowFields;
    if (!Unsigned(r[i], std::numeric_limits<uint64_t>::max(), &d.time_ns) ||
        !Unsigned(r[i + 1], std::numeric_limits<int32_t>::max(), &tid) ||
        !Unsigned(r[i + 2], std::numeric_limits<uint64_t>::max(), &d.bytes) ||
        !Unsigned(r[i + 3], kMaxHeapStackId, &stack) || !r[i + 4].is_number()) {
      return Bad("heap sample row " + std::to_string(row) + " has a field of the wrong type");
    }
    d.tid = static_cast<pid_t>(tid);
    d.stack = static_cast<uint32_t>(stack);
    d.estimated_bytes = r[i + 4].get<double>();
    if (!std::isfinite(d.estimated_bytes) || d.estimated_bytes < 0) {
      return Bad("heap sample row " + std::to_string(row) + " has a bad estimated_bytes");
    }
    if (known.count(d.stack) == 0 && new_stacks->count(d.stack) == 0) {
      return Bad("heap sample row " + std::to_string(row) + " names unknown stack id " +
                 std::to_string(d.stack));
    }
    samples->push_back(d);
  }
  return OkStatus();
}

}  // namespace cppdiag::ipc
