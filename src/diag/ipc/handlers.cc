#include "diag/ipc/handlers.h"

#include <unistd.h>

#include "common/cgroup.h"
#include "common/proc.h"

namespace cppdiag::ipc {
namespace {

nlohmann::json OptionalBytes(const std::optional<uint64_t>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

Result<nlohmann::json> ProcessInfo(const RuntimeInfo& rt) {
  pid_t pid = ::getpid();
  CPPDIAG_ASSIGN_OR_RETURN(ProcStat stat, ReadProcStat(pid));
  auto argv = ReadCmdline(pid);
  char exe[4096] = {};
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  nlohmann::json info = {
      {"pid", pid},
      {"uid", ::geteuid()},
      {"name", stat.comm},
      {"exe", n > 0 ? std::string(exe, static_cast<size_t>(n)) : ""},
      {"cmdline", argv ? *argv : std::vector<std::string>{}},
      {"start_time_ticks", stat.start_time_ticks},
      {"dump_type", DumpTypeName(rt.config.dump_type)},
      {"dump_name", rt.config.dump_name},
      {"dump_dir", rt.config.dump_dir},
      {"heap_hard_limit_bytes", OptionalBytes(rt.heap_hard_limit_bytes)},
  };
  if (auto mem = CgroupReader().ReadMemory(); mem.ok()) {
    info["cgroup"] = {{"version", mem->version},
                      {"usage_bytes", mem->usage_bytes},
                      {"limit_bytes", OptionalBytes(mem->limit_bytes)}};
  }
  return info;
}

}  // namespace

DiagnosticServer::Handlers MakeHandlers(const RuntimeInfo& runtime) {
  DiagnosticServer::Handlers h;
  h[Command::kProcessInfo] = [&runtime](const nlohmann::json&, const PeerInfo&) {
    return ProcessInfo(runtime);
  };
  return h;
}

}  // namespace cppdiag::ipc
