#include "diag/runtime.h"

#include <pthread.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "common/parse.h"
#include "diag/dump/crash_handler.h"
#include "diag/dump/oom_watchdog.h"
#include "diag/dump/self_dump.h"
#include "diag/heap/allocation_hooks.h"
#include "diag/heap/heap_note.h"
#include "diag/heap/heap_profiler.h"
#include "diag/ipc/server.h"
#include "diag/request_handlers.h"
#include "diag/trace_request.h"

namespace cppdiag {
namespace {

std::once_flag g_once;
std::optional<Result<const RuntimeInfo*>> g_result;
RuntimeInfo g_info;  // NOLINT(cert-err58-cpp): its strings are short (no allocation)
std::unique_ptr<OomWatchdog> g_watchdog;
std::unique_ptr<ipc::DiagnosticServer> g_server;

void ResolveHeapLimit() {
  const auto& limit = g_info.config.heap_hard_limit;
  if (!limit) return;
  if (!limit->is_percent) {
    g_info.heap_hard_limit_bytes = limit->bytes;
  } else if (g_info.cgroup && g_info.cgroup->limit_bytes) {
    g_info.heap_hard_limit_bytes = limit->Resolve(*g_info.cgroup->limit_bytes);
  }
  if (!g_info.heap_hard_limit_bytes) return;
  if (!heap::HooksActive()) {
    std::fprintf(stderr,
                 "cppdiag: heap hard limit ignored: this build keeps the sanitizer's allocator\n");
    g_info.heap_hard_limit_bytes.reset();
    return;
  }
  heap::SetHeapHardLimit(*g_info.heap_hard_limit_bytes);
}

// The sampling heap profiler, and its live-heap table in every dump's notes.
void StartHeapProfiler() {
  uint64_t period = g_info.config.heap_sample_bytes;
  if (period == 0 || !heap::HooksActive()) return;
  if (!heap::StartHeapProfiler(period)) {
    std::fprintf(stderr, "cppdiag: heap profiler not started: no memory for its tables\n");
    return;
  }
  heap::RegisterHeapNoteProvider();
}

// Runs on the watchdog's thread when usage crosses the threshold.
void DumpBeforeOomKill(uint64_t usage, uint64_t limit) {
  std::fprintf(stderr,
               "cppdiag: cgroup memory usage %s of %s crossed CPPDIAG_OOM_DUMP_THRESHOLD=%g%%: "
               "writing a dump before the OOM killer acts\n",
               FormatBytes(usage).c_str(), FormatBytes(limit).c_str(),
               *g_info.config.oom_dump_threshold);
  NoteTraceMarker("trigger", {{"trigger", "oom-watchdog"},
                              {"cgroup_usage_bytes", usage},
                              {"cgroup_limit_bytes", limit},
                              {"threshold_percent", *g_info.config.oom_dump_threshold}});
  dump::SelfDumpRequest request;
  request.reason = "oom-watchdog";
  dump::SelfDumpResult result;
  if (int err = dump::WriteSelfDump(request, &result)) {
    std::fprintf(stderr, "cppdiag: no dump written: %s %s: %s\n", result.failed_call, result.path,
                 ErrnoDescription(err).c_str());
  } else {
    std::fprintf(stderr, "cppdiag: dump complete: %s (%s)\n", result.path,
                 FormatBytes(result.size_bytes).c_str());
    NoteTraceMarker("dump", {{"path", result.path},
                             {"bytes", result.size_bytes},
                             {"reason", "oom-watchdog"},
                             {"cgroup_usage_bytes", usage},
                             {"cgroup_limit_bytes", limit}});
  }
}

void StartWatchdog() {
  if (!g_info.config.oom_dump_threshold) return;
  if (!g_info.cgroup || !g_info.cgroup->limit_bytes) {
    std::fprintf(stderr, "cppdiag: CPPDIAG_OOM_DUMP_THRESHOLD ignored: no cgroup memory limit\n");
    return;
  }
  g_watchdog = std::make_unique<OomWatchdog>(
      OomWatchdogOptions{.threshold_percent = *g_info.config.oom_dump_threshold,
                         .cgroup_version = g_info.cgroup->version,
                         .cgroup_dir = g_info.cgroup->dir,
                         .limit_bytes = *g_info.cgroup->limit_bytes,
                         .on_cross = DumpBeforeOomKill});
  if (auto s = g_watchdog->Start(); !s) {
    std::fprintf(stderr, "cppdiag: pre-OOM watchdog not started: %s\n",
                 s.error().message().c_str());
    g_watchdog.reset();
  }
}

// The child of fork() is another process with a copy of this one's runtime:
// the parent's socket, eventfds and /proc handles. Left alone, the copy hands
// the parent's memory to a child that drops privileges, and its destructors at
// exit stop the parent's server and watchdog (shared eventfds), unlink the
// parent's socket file, and wait for threads that exist only in the parent.
// So the child's copy is made inert: every descriptor the runtime owns is
// closed, and the objects are left to the child's exit, never destroyed.
// Async-signal-safe: it runs in the child of a multithreaded process.
void AtForkChild() {
  if (ipc::DiagnosticServer* server = g_server.release()) server->AbandonInForkedChild();
  if (OomWatchdog* watchdog = g_watchdog.release()) watchdog->AbandonInForkedChild();
  dump::ForgetSelfDumpStateInForkedChild();  // a dump in the child opens its own files
}

Result<const RuntimeInfo*> Start(std::optional<SizeOrPercent> default_heap_limit) {
  // Before any of the runtime's threads or descriptors exist.
  if (int err = ::pthread_atfork(nullptr, nullptr, &AtForkChild)) {
    return Error(err, "pthread_atfork");
  }
  CPPDIAG_ASSIGN_OR_RETURN(g_info.config,
                           ParseDiagConfig(CurrentEnvironment(), default_heap_limit));
  const DiagConfig& c = g_info.config;
  if (auto mem = CgroupReader().ReadMemory(); mem.ok()) g_info.cgroup = *mem;
  ResolveHeapLimit();
  StartHeapProfiler();

  // Every way of dumping (crash, watchdog, socket) writes a self-dump.
  if (c.enable_dump_on_crash || c.oom_dump_threshold || c.enable_diagnostics) {
    dump::SelfDumpConfig dc;
    dc.default_type = c.dump_type;
    dc.name_template = c.dump_name;
    dc.dump_dir = c.dump_dir;  // opened once, here: socket requests are confined beneath it
    if (g_info.cgroup) {
      dc.cgroup_version = g_info.cgroup->version;
      dc.cgroup_dir = g_info.cgroup->dir;
      dc.cgroup_limit_bytes = g_info.cgroup->limit_bytes;
    }
    if (auto s = dump::PrepareSelfDump(dc); !s) {
      std::fprintf(stderr, "cppdiag: dumps unavailable: %s\n", s.error().message().c_str());
    } else if (c.enable_dump_on_crash) {
      if (auto h = dump::InstallCrashHandler(); !h) {
        std::fprintf(stderr, "cppdiag: crash handler not installed: %s\n",
                     h.error().message().c_str());
      }
    }
  }
  if (dump::SelfDumpPrepared()) StartWatchdog();

  if (c.enable_diagnostics) {
    auto server = ipc::DiagnosticServer::Start({.tmpdir = c.tmpdir}, MakeRequestHandlers(g_info));
    if (server) {
      g_server = std::move(*server);
    } else {  // the service runs on without its socket
      std::fprintf(stderr, "cppdiag: diagnostic server not started: %s\n",
                   server.error().message().c_str());
    }
  }
  return &g_info;
}

}  // namespace

Result<const RuntimeInfo*> StartRuntime(std::optional<SizeOrPercent> default_heap_limit) {
  std::call_once(g_once, [&] { g_result = Start(default_heap_limit); });
  return *g_result;
}

const RuntimeInfo* CurrentRuntime() {
  return g_result && g_result->ok() ? g_result->value() : nullptr;
}

}  // namespace cppdiag
