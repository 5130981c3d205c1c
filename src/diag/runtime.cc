#include "diag/runtime.h"

#include <cstdio>
#include <memory>
#include <mutex>

#include "diag/heap/allocation_hooks.h"
#include "diag/ipc/handlers.h"
#include "diag/ipc/server.h"

namespace cppdiag {
namespace {

std::once_flag g_once;
std::optional<Result<const RuntimeInfo*>> g_result;
RuntimeInfo g_info;
std::unique_ptr<ipc::DiagnosticServer> g_server;

Result<const RuntimeInfo*> Start(std::optional<SizeOrPercent> default_heap_limit) {
  CPPDIAG_ASSIGN_OR_RETURN(g_info.config,
                           ParseDiagConfig(CurrentEnvironment(), default_heap_limit));
  if (auto mem = CgroupReader().ReadMemory(); mem.ok()) g_info.cgroup = *mem;
  if (const auto& limit = g_info.config.heap_hard_limit) {
    if (!limit->is_percent) {
      g_info.heap_hard_limit_bytes = limit->bytes;
    } else if (g_info.cgroup && g_info.cgroup->limit_bytes) {
      g_info.heap_hard_limit_bytes = limit->Resolve(*g_info.cgroup->limit_bytes);
    }
  }
  if (g_info.heap_hard_limit_bytes) {
    if (heap::HooksActive()) {
      heap::SetHeapHardLimit(*g_info.heap_hard_limit_bytes);
    } else {
      std::fprintf(stderr,
                   "cppdiag: heap hard limit ignored: this build keeps the sanitizer's "
                   "allocator\n");
      g_info.heap_hard_limit_bytes.reset();
    }
  }
  if (g_info.config.enable_diagnostics) {
    auto server =
        ipc::DiagnosticServer::Start({.tmpdir = g_info.config.tmpdir}, ipc::MakeHandlers(g_info));
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
