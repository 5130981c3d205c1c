#include "diag/trace_request.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "common/async_safe.h"
#include "diag/counters/collect.h"
#include "diag/cpu/cpu_sampler.h"
#include "diag/heap/heap_profile.h"
#include "diag/heap/heap_profiler.h"
#include "diag/heap/sampler.h"
#include "diag/ipc/heap_sample_stream.h"

namespace cppdiag {
namespace {

constexpr uint64_t kMaxDurationMs = 24ull * 3600 * 1000;
// Without progress frames everything comes in the reply: keep it bounded.
constexpr uint64_t kMaxUnstreamedMs = 10ull * 60 * 1000;
constexpr auto kDrainInterval = std::chrono::milliseconds(100);
// Heap samples held for one frame or the reply, at most (the rest counted missed).
constexpr size_t kMaxHeapSamplesHeld = 100000;

// The running trace's stop request (one trace at a time: the sampler says so).
std::mutex g_mu;
std::condition_variable g_cv;
bool g_running = false;  // guarded by g_mu
bool g_stop = false;     // guarded by g_mu
// Markers not yet sent, at most kMaxMarkers between two drains.
constexpr size_t kMaxMarkers = 1000;
std::vector<nlohmann::json> g_markers;  // guarded by g_mu
uint64_t g_markers_missed = 0;          // guarded by g_mu

nlohmann::json SamplesToJson(const std::vector<cpu::CpuSample>& samples) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : samples) {
    out.push_back({{"tid", s.tid}, {"time_ns", s.time_ns}, {"weight", s.weight}, {"pcs", s.pcs}});
  }
  return out;
}

// Moves the heap samples numbered from *cursor on into `enc`, each new
// stack once: the ring copied under the table's lock into `buf` (kept for
// the trace: nothing allocated per drain but the rows' growth), the
// published stack records read without it (they never change).
void TakeHeapSamples(heap::LiveTable& table, std::vector<heap::RecentSample>* buf, uint64_t* cursor,
                     uint64_t* missed, ipc::HeapSampleEncoder* enc) {
  size_t n = table.ReadRecent(cursor, buf->data(), buf->size(), missed);
  const size_t stacks = table.stack_count();
  for (size_t i = 0; i < n; ++i) {
    const heap::RecentSample& r = (*buf)[i];
    if (enc->samples() >= kMaxHeapSamplesHeld) {
      ++*missed;
      continue;
    }
    uint32_t stack = r.stack;
    if (stack >= stacks) {  // cannot happen: an id is published before its sample
      ++*missed;
      continue;
    }
    if (enc->NeedsStack(stack)) {
      const heap::StackRecord& st = table.stack(stack);
      enc->AddStack(stack, st.pcs, st.depth);
    }
    enc->AddSample(r.time_ns, r.tid, r.size,
                   static_cast<double>(r.weight) * static_cast<double>(r.size), stack);
  }
}

nlohmann::json TakeMarkers() {
  std::lock_guard lock(g_mu);
  nlohmann::json out = nlohmann::json::array();
  for (auto& m : g_markers) out.push_back(std::move(m));
  g_markers.clear();
  return out;
}

nlohmann::json ThreadsToJson(const cpu::CpuSampler& sampler) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [tid, t] : sampler.threads()) {
    nlohmann::json j = {{"tid", tid}, {"name", t.name}, {"sampled", t.sampled}};
    if (!t.sampled) j["why_not"] = t.why_not;
    out.push_back(std::move(j));
  }
  return out;
}

nlohmann::json MappingsToJson() {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : heap::ExecutableMappings()) {
    out.push_back({{"start", m.start},
                   {"end", m.end},
                   {"offset", m.offset},
                   {"path", m.path},
                   {"build_id", m.build_id}});
  }
  return out;
}

template <typename T>
Result<T> Field(const nlohmann::json& req, const char* name, T fallback, T min, T max) {
  auto it = req.find(name);
  if (it == req.end()) return fallback;
  if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
    return Error::Invalid(std::string("\"") + name + "\" must be a non-negative integer");
  }
  uint64_t v = it->get<uint64_t>();
  if (v < static_cast<uint64_t>(min) || v > static_cast<uint64_t>(max)) {
    return Error::Invalid(std::string("\"") + name + "\" " + std::to_string(v) +
                          " is out of range (" + std::to_string(min) + " to " +
                          std::to_string(max) + ")");
  }
  return static_cast<T>(v);
}

}  // namespace

Result<nlohmann::json> RunTrace(const nlohmann::json& req, const ipc::PeerInfo& peer) {
  cpu::SamplerOptions options;
  std::string profile = "cpu";
  if (auto it = req.find("profile"); it != req.end()) {
    if (!it->is_string()) return Error::Invalid("\"profile\" must be \"cpu\" or \"wall\"");
    profile = it->get<std::string>();
  }
  CPPDIAG_ASSIGN_OR_RETURN(options.kind, cpu::ParseProfileKind(profile));
  CPPDIAG_ASSIGN_OR_RETURN(options.rate_hz, Field<uint32_t>(req, "rate_hz", 99, 1, 10000));
  const bool streamed = static_cast<bool>(peer.progress);
  CPPDIAG_ASSIGN_OR_RETURN(uint64_t duration_ms,
                           Field<uint64_t>(req, "duration_ms", streamed ? 0 : 10000, 0,
                                           streamed ? kMaxDurationMs : kMaxUnstreamedMs));
  if (!streamed && duration_ms == 0) {
    return Error::Invalid("\"duration_ms\" 0 (until stopped) needs \"progress\": true");
  }
  CPPDIAG_ASSIGN_OR_RETURN(uint64_t counters_ms,
                           Field<uint64_t>(req, "counters_interval_ms", 1000, 0, 3600000));
  options.exclude_tids.insert(CurrentTid());

  {
    std::lock_guard lock(g_mu);
    if (g_running) return Error(EBUSY, "", "a trace is already running in this process");
    g_running = true;
    g_stop = false;
    g_markers.clear();
    g_markers_missed = 0;
  }
  struct Done {
    ~Done() {
      std::lock_guard lock(g_mu);
      g_running = false;
    }
  } done;

  const uint64_t start_unix_ns = RealtimeNs();
  auto sampler = cpu::CpuSampler::Start(options);
  if (!sampler) return sampler.error();
  cpu::CpuSampler& s = **sampler;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::milliseconds(duration_ms);
  auto next_counters = start;
  std::vector<cpu::CpuSample> batch;
  nlohmann::json counters = nlohmann::json::array();
  // Heap samples: those since the trace started (0 when the profiler is off).
  heap::LiveTable* table = heap::ProfilerTable();
  const bool heap_on = heap::HeapSamplePeriod() != 0 && table != nullptr;
  uint64_t heap_cursor = heap::HeapSampleCursor();
  uint64_t heap_missed = 0;
  std::vector<heap::RecentSample> heap_buf(heap_on ? heap::kRecentCapacity : 0);
  ipc::HeapSampleEncoder heap_enc;
  auto take_heap = [&] {
    if (heap_on) TakeHeapSamples(*table, &heap_buf, &heap_cursor, &heap_missed, &heap_enc);
  };
  auto markers_missed = [] {
    std::lock_guard lock(g_mu);
    return g_markers_missed;
  };
  std::string ended_by = "duration";

  auto take_counters = [&](std::chrono::steady_clock::time_point now) {
    if (counters_ms == 0 || now < next_counters) return;
    counters.push_back(counters::SampleToJson(counters::CollectCounters()));
    next_counters = now + std::chrono::milliseconds(counters_ms);
  };
  if (streamed) {
    peer.progress({{"profile", cpu::ProfileKindName(s.kind())},
                   {"rate_hz", options.rate_hz},
                   {"period_ns", s.period_ns()},
                   {"start_monotonic_ns", s.start_ns()},
                   {"start_unix_ns", start_unix_ns}});
  }
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    take_counters(now);
    auto wake = now + kDrainInterval;
    if (duration_ms != 0 && deadline < wake) wake = deadline;
    {
      std::unique_lock lock(g_mu);
      g_cv.wait_until(lock, wake, [] { return g_stop; });
      if (g_stop) {
        ended_by = "request";
        break;
      }
    }
    if (duration_ms != 0 && std::chrono::steady_clock::now() >= deadline) break;
    if (peer.ServerStopping()) {  // the process is exiting: the server waits for us
      ended_by = "exit";
      break;
    }
    s.Rescan();
    s.Drain(&batch);
    take_heap();
    if (streamed) {
      nlohmann::json frame = {{"samples", SamplesToJson(batch)},
                              {"lost_samples", s.lost_samples()},
                              {"counters", counters}};
      if (heap_on) {
        heap_enc.TakeInto(&frame);
        frame["heap_samples_missed"] = heap_missed;
      }
      frame["markers"] = TakeMarkers();
      peer.progress(frame);
      batch.clear();
      counters = nlohmann::json::array();
      if (peer.gone && peer.gone()) {
        ended_by = "client";
        break;
      }
    }
  }
  s.Stop(&batch);
  const uint64_t end_ns = MonotonicNs();
  take_counters(std::chrono::steady_clock::now());
  take_heap();
  nlohmann::json reply{{"profile", cpu::ProfileKindName(s.kind())},
                       {"rate_hz", options.rate_hz},
                       {"period_ns", s.period_ns()},
                       {"start_monotonic_ns", s.start_ns()},
                       {"end_monotonic_ns", end_ns},
                       {"start_unix_ns", start_unix_ns},
                       {"ended_by", ended_by},
                       {"samples", SamplesToJson(batch)},
                       {"counters", counters},
                       {"lost_samples", s.lost_samples()},
                       {"threads", ThreadsToJson(s)},
                       {"mappings", MappingsToJson()},
                       {"markers", TakeMarkers()},
                       {"markers_missed", markers_missed()}};
  if (heap_on) {
    heap_enc.TakeInto(&reply);
    reply["heap_samples_missed"] = heap_missed;
    reply["heap_sample_period_bytes"] = heap::HeapSamplePeriod();
  }
  return reply;
}

void NoteTraceMarker(const std::string& name, nlohmann::json args) {
  const uint64_t now = MonotonicNs();
  std::lock_guard lock(g_mu);
  if (!g_running) return;
  if (g_markers.size() >= kMaxMarkers) {
    ++g_markers_missed;
    return;
  }
  g_markers.push_back({{"time_ns", now}, {"name", name}, {"args", std::move(args)}});
}

Result<nlohmann::json> StopTrace() {
  std::lock_guard lock(g_mu);
  if (!g_running) return Error(ESRCH, "", "no trace is running in this process");
  g_stop = true;
  g_cv.notify_all();
  return nlohmann::json{{"stopping", true}};
}

}  // namespace cppdiag
