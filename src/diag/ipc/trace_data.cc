#include "diag/ipc/trace_data.h"

namespace cppdiag::ipc {

Status AddTraceFrame(const nlohmann::json& frame, TraceData* data, bool is_reply) {
  TraceData add;
  HeapStackTable new_stacks;
  try {
    if (!frame.is_object()) return Error::Invalid("malformed trace frame: not an object");
    for (const auto& s : frame.value("samples", nlohmann::json::array())) {
      TraceSample out;
      out.tid = s.at("tid").get<pid_t>();
      out.time_ns = s.at("time_ns").get<uint64_t>();
      out.weight = s.value("weight", uint32_t{1});
      out.pcs = s.at("pcs").get<std::vector<uint64_t>>();
      add.samples.push_back(std::move(out));
    }
    for (const auto& c : frame.value("counters", nlohmann::json::array())) {
      TraceCounters out;
      out.monotonic_ns = c.at("monotonic_ns").get<uint64_t>();
      for (const auto& [name, v] : c.at("values").items()) {
        if (v.is_number()) out.values.emplace_back(name, v.get<double>());
      }
      add.counters.push_back(std::move(out));
    }
    for (const auto& h : frame.value("heap_samples", nlohmann::json::array())) {
      TraceHeapSample out;
      out.tid = h.at("tid").get<pid_t>();
      out.time_ns = h.at("time_ns").get<uint64_t>();
      out.bytes = h.at("bytes").get<uint64_t>();
      out.estimated_bytes = h.value("estimated_bytes", static_cast<double>(out.bytes));
      out.pcs = h.at("pcs").get<std::vector<uint64_t>>();
      add.heap_samples.push_back(std::move(out));
    }
    std::vector<DecodedHeapSample> rows;
    CPPDIAG_RETURN_IF_ERROR(DecodeHeapSamples(frame, data->heap_stacks, &new_stacks, &rows));
    for (const auto& r : rows) {
      auto it = new_stacks.find(r.stack);
      const auto& pcs = it != new_stacks.end() ? it->second : data->heap_stacks.at(r.stack);
      add.heap_samples.push_back({r.tid, r.time_ns, r.bytes, r.estimated_bytes, pcs});
    }
    for (const auto& m : frame.value("markers", nlohmann::json::array())) {
      TraceMarker out;
      out.time_ns = m.at("time_ns").get<uint64_t>();
      out.name = m.at("name").get<std::string>();
      out.args = m.value("args", nlohmann::json::object());
      if (!out.args.is_object()) return Error::Invalid("malformed trace frame: marker args");
      add.markers.push_back(std::move(out));
    }
    for (const auto& t : frame.value("threads", nlohmann::json::array())) {
      TraceThread out;
      out.tid = t.at("tid").get<pid_t>();
      out.name = t.value("name", std::string());
      out.sampled = t.value("sampled", false);
      out.why_not = t.value("why_not", std::string());
      add.threads.push_back(std::move(out));
    }
    for (const auto& m : frame.value("mappings", nlohmann::json::array())) {
      heap::HeapMapping out;
      out.start = m.at("start").get<uint64_t>();
      out.end = m.at("end").get<uint64_t>();
      out.offset = m.value("offset", uint64_t{0});
      out.path = m.value("path", std::string());
      out.build_id = m.value("build_id", std::string());
      add.mappings.push_back(std::move(out));
    }
    if (frame.contains("profile")) data->profile = frame.at("profile").get<std::string>();
    if (frame.contains("rate_hz")) data->rate_hz = frame.at("rate_hz").get<uint32_t>();
    if (frame.contains("period_ns")) data->period_ns = frame.at("period_ns").get<uint64_t>();
    if (frame.contains("start_monotonic_ns")) {
      data->start_monotonic_ns = frame.at("start_monotonic_ns").get<uint64_t>();
    }
    if (frame.contains("end_monotonic_ns")) {
      data->end_monotonic_ns = frame.at("end_monotonic_ns").get<uint64_t>();
    }
    if (frame.contains("start_unix_ns")) {
      data->start_unix_ns = frame.at("start_unix_ns").get<uint64_t>();
    }
    if (frame.contains("ended_by")) data->ended_by = frame.at("ended_by").get<std::string>();
    if (frame.contains("heap_samples_missed")) {
      data->heap_samples_missed = frame.at("heap_samples_missed").get<uint64_t>();
    }
    if (frame.contains("heap_sample_period_bytes")) {
      data->heap_sample_period_bytes = frame.at("heap_sample_period_bytes").get<uint64_t>();
    }
    if (frame.contains("markers_missed")) {
      data->markers_missed = frame.at("markers_missed").get<uint64_t>();
    }
    if (frame.contains("lost_samples")) {
      data->lost_samples = frame.at("lost_samples").get<uint64_t>();
    }
  } catch (const nlohmann::json::exception& e) {
    return Error::Invalid(std::string("malformed trace frame: ") + e.what());
  }
  for (auto& s : add.samples) data->samples.push_back(std::move(s));
  for (auto& c : add.counters) data->counters.push_back(std::move(c));
  for (auto& h : add.heap_samples) data->heap_samples.push_back(std::move(h));
  for (auto& m : add.markers) data->markers.push_back(std::move(m));
  data->heap_stacks.merge(new_stacks);
  if (is_reply) {
    data->threads = std::move(add.threads);
    data->mappings = std::move(add.mappings);
    data->complete = true;
  }
  return OkStatus();
}

}  // namespace cppdiag::ipc
