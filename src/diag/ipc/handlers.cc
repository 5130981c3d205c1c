#include "diag/ipc/handlers.h"

#include <limits.h>
#include <unistd.h>

#include <chrono>

#include "common/cgroup.h"
#include "common/proc.h"
#include "diag/dump/self_dump.h"
#include "diag/ipc/dump_path.h"

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

// Writes a dump where the request says (confined to CPPDIAG_DUMP_DIR).
Result<nlohmann::json> Dump(const RuntimeInfo& rt, const nlohmann::json& req) {
  DumpType type = rt.config.dump_type;
  if (req.contains("type")) {
    CPPDIAG_ASSIGN_OR_RETURN(type, ParseDumpType(req.at("type").get<std::string>()));
  }
  bool overwrite = req.value("overwrite", false);
  std::string requested = req.value("path", std::string());
  if (requested.empty()) {
    char expanded[PATH_MAX];
    if (int err = dump::ExpandSelfDumpName("on-demand", expanded, sizeof expanded)) {
      return Error(err, "expand", "CPPDIAG_DUMP_NAME");
    }
    requested = expanded;
  }
  CPPDIAG_ASSIGN_OR_RETURN(std::string path,
                           ResolveDumpPath(requested, rt.config.dump_dir, overwrite));

  dump::SelfDumpRequest request;
  request.type = type;
  request.reason = "on-demand";
  request.path = path.c_str();
  request.replace_existing = overwrite;
  dump::SelfDumpResult result;
  auto start = std::chrono::steady_clock::now();
  int err = dump::WriteSelfDump(request, &result);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (err == EBUSY) return Error(EBUSY, "", "another dump is being written; try again");
  if (err != 0) {
    return Error(err, result.failed_call, result.path);
  }
  return nlohmann::json{{"path", result.path},
                        {"type", DumpTypeName(result.type)},
                        {"bytes", result.size_bytes},
                        {"data_bytes", result.data_bytes},
                        {"threads", result.threads},
                        {"threads_not_captured", result.threads_not_captured},
                        {"duration_ms", ms},
                        // The threads stay stopped while the dump is written.
                        {"pause_ms", ms},
                        {"mode", "suspended"}};
}

}  // namespace

DiagnosticServer::Handlers MakeHandlers(const RuntimeInfo& runtime) {
  DiagnosticServer::Handlers h;
  h[Command::kProcessInfo] = [&runtime](const nlohmann::json&, const PeerInfo&) {
    return ProcessInfo(runtime);
  };
  if (dump::SelfDumpPrepared()) {
    h[Command::kDump] = [&runtime](const nlohmann::json& req, const PeerInfo&) {
      return Dump(runtime, req);
    };
  }
  return h;
}

}  // namespace cppdiag::ipc
