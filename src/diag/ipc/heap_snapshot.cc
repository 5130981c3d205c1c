#include "diag/ipc/heap_snapshot.h"

namespace cppdiag::ipc {

nlohmann::json HeapProfileToJson(const heap::HeapProfile& p) {
  nlohmann::json stacks = nlohmann::json::array();
  for (const auto& s : p.stacks) {
    stacks.push_back({{"pcs", s.pcs},
                      {"sampled_count", s.sampled_count},
                      {"sampled_bytes", s.sampled_bytes},
                      {"estimated_count", s.estimated_count},
                      {"estimated_bytes", s.estimated_bytes}});
  }
  nlohmann::json mappings = nlohmann::json::array();
  for (const auto& m : p.mappings) {
    mappings.push_back({{"start", m.start},
                        {"end", m.end},
                        {"offset", m.offset},
                        {"path", m.path},
                        {"build_id", m.build_id}});
  }
  return {{"sample_period_bytes", p.sample_period_bytes},
          {"time_unix_ns", p.time_unix_ns},
          {"total_allocated_bytes", p.total_allocated_bytes},
          {"total_freed_bytes", p.total_freed_bytes},
          {"stacks", std::move(stacks)},
          {"mappings", std::move(mappings)}};
}

Result<heap::HeapProfile> HeapProfileFromJson(const nlohmann::json& j) {
  heap::HeapProfile p;
  try {
    p.sample_period_bytes = j.value("sample_period_bytes", uint64_t{0});
    p.time_unix_ns = j.value("time_unix_ns", int64_t{0});
    p.total_allocated_bytes = j.value("total_allocated_bytes", uint64_t{0});
    p.total_freed_bytes = j.value("total_freed_bytes", uint64_t{0});
    for (const auto& s : j.value("stacks", nlohmann::json::array())) {
      heap::HeapStackSample out;
      out.pcs = s.at("pcs").get<std::vector<uint64_t>>();
      out.sampled_count = s.value("sampled_count", uint64_t{0});
      out.sampled_bytes = s.value("sampled_bytes", uint64_t{0});
      out.estimated_count = s.value("estimated_count", 0.0);
      out.estimated_bytes = s.value("estimated_bytes", 0.0);
      p.stacks.push_back(std::move(out));
    }
    for (const auto& m : j.value("mappings", nlohmann::json::array())) {
      heap::HeapMapping out;
      out.start = m.at("start").get<uint64_t>();
      out.end = m.at("end").get<uint64_t>();
      out.offset = m.value("offset", uint64_t{0});
      out.path = m.value("path", std::string());
      out.build_id = m.value("build_id", std::string());
      p.mappings.push_back(std::move(out));
    }
  } catch (const nlohmann::json::exception& e) {
    return Error::Invalid(std::string("malformed heap snapshot reply: ") + e.what());
  }
  return p;
}

}  // namespace cppdiag::ipc
