#include "diag/ipc/trace_data.h"

namespace cppdiag::ipc {

Status AddTraceFrame(const nlohmann::json& frame, TraceData* data, bool is_reply) {
  TraceData add;
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
    if (frame.contains("lost_samples")) {
      data->lost_samples = frame.at("lost_samples").get<uint64_t>();
    }
  } catch (const nlohmann::json::exception& e) {
    return Error::Invalid(std::string("malformed trace frame: ") + e.what());
  }
  for (auto& s : add.samples) data->samples.push_back(std::move(s));
  for (auto& c : add.counters) data->counters.push_back(std::move(c));
  if (is_reply) {
    data->threads = std::move(add.threads);
    data->mappings = std::move(add.mappings);
    data->complete = true;
  }
  return OkStatus();
}

}  // namespace cppdiag::ipc
