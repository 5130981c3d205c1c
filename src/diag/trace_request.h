// The trace and trace-stop commands of the diagnostic socket
// (docs/protocol.md): a trace runs the CPU sampler (diag/cpu) on the
// request's thread, drains it every 100 ms and streams the samples to the
// client as progress frames, with a counters reading every
// counters_interval_ms; the reply carries what is left, the threads, the
// executable mappings (to symbolize out of process) and the totals. With
// the heap profiler on, each sampled allocation (time, thread, size, stack)
// goes on the same timeline, and so do markers (NoteTraceMarker: dumps). It ends
// at duration_ms, on a trace-stop request, or when the client goes away.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "diag/ipc/request.h"

namespace cppdiag {

Result<nlohmann::json> RunTrace(const nlohmann::json& request, const ipc::PeerInfo& peer);

// Ends the running trace early. ESRCH when none runs.
Result<nlohmann::json> StopTrace();

// Puts an event (a dump written, ...) on the running trace's timeline at
// the current CLOCK_MONOTONIC time; nothing when no trace runs. Normal
// context (takes a lock, allocates): never from a signal handler.
void NoteTraceMarker(const std::string& name, nlohmann::json args);

}  // namespace cppdiag
