#include "diag/request_handlers.h"

#include <limits.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>

#include "common/cgroup.h"
#include "common/proc.h"
#include "common/raw_log.h"
#include "diag/counters/collect.h"
#include "diag/dump/self_dump.h"
#include "diag/heap/heap_profile.h"
#include "diag/ipc/dump_path.h"
#include "diag/ipc/heap_snapshot.h"
#include "diag/trace_request.h"

namespace cppdiag {
namespace {

using ipc::Command;
using ipc::DiagnosticServer;
using ipc::DumpPath;
using ipc::HeapProfileToJson;
using ipc::PeerInfo;
using ipc::ResolveDumpPath;

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

// Forwards the self-dump's progress (fork mode) as progress frames. It runs
// inside the dump, so nothing may throw out of it (JSON, bad_alloc, the
// server's send): a frame that cannot be made or sent is dropped, and the
// reply still tells how the dump went.
void SendProgress(void* context, uint64_t written, uint64_t total) noexcept {
  const auto* peer = static_cast<const PeerInfo*>(context);
  try {
    peer->progress(nlohmann::json{{"bytes_written", written}, {"bytes_total", total}});
  } catch (...) {  // dropped: the next frame, or the reply, tells
  }
}

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// "pwrite /dumps/core.1: No space left on device (ENOSPC); nothing was left
// behind": the errno by name, so a full disk reads as one.
Error DumpFailure(int err, const dump::SelfDumpResult& result) {
  return Error(err, "",
               std::string(result.failed_call) + " " + result.path + ": " + ErrnoDescription(err) +
                   " (" + ErrnoName(err) + "); nothing was left behind");
}

// The request's "trigger" (what made a tool ask for the dump: cppdiag
// monitor's "cpu 93.1% >= 90%"), or "" without one. It goes into the note
// and the trace, so a peer's string is held to short printable ASCII.
Result<std::string> DumpTrigger(const nlohmann::json& req) {
  if (!req.contains("trigger")) return std::string();
  constexpr size_t kMaxTrigger = 200;
  const auto& t = req.at("trigger");
  if (!t.is_string()) return Error(EINVAL, "", "trigger must be a string");
  const std::string& text = t.get_ref<const std::string&>();
  if (text.empty() || text.size() > kMaxTrigger ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) {
    return Error(EINVAL, "", "trigger must be 1 to 200 printable ASCII characters");
  }
  return text;
}

// Writes a dump where the request says (confined to CPPDIAG_DUMP_DIR), in
// fork mode unless the cgroup lacks the headroom (SelfDumpMode::kAuto).
Result<nlohmann::json> Dump(const RuntimeInfo& rt, const nlohmann::json& req,
                            const PeerInfo& peer) {
  DumpType type = rt.config.dump_type;
  if (req.contains("type")) {
    CPPDIAG_ASSIGN_OR_RETURN(type, ParseDumpType(req.at("type").get<std::string>()));
  }
  bool overwrite = req.value("overwrite", false);
  CPPDIAG_ASSIGN_OR_RETURN(std::string trigger, DumpTrigger(req));
  std::string requested = req.value("path", std::string());
  if (requested.empty()) {
    char expanded[PATH_MAX];
    if (int err = dump::ExpandSelfDumpName("on-demand", expanded, sizeof expanded)) {
      return Error(err, "expand", "CPPDIAG_DUMP_NAME");
    }
    requested = expanded;
  }
  // The checks make the messages; the self-dump confines the file to its
  // descriptor of the dump directory whatever happens after them.
  CPPDIAG_ASSIGN_OR_RETURN(DumpPath target,
                           ResolveDumpPath(requested, rt.config.dump_dir, overwrite));
  const std::string& path = target.path;

  // On the timeline before the dump starts: the firing, then the dump.
  const std::string reason = trigger.empty() ? "on-demand" : "trigger: " + trigger;
  if (!trigger.empty()) NoteTraceMarker("trigger", {{"trigger", trigger}, {"path", path}});
  dump::SelfDumpRequest request;
  request.type = type;
  request.reason = reason.c_str();
  request.path = target.relative.c_str();
  request.in_dump_dir = true;
  request.replace_existing = overwrite;
  request.mode = dump::SelfDumpMode::kAuto;
  if (peer.progress) {
    // The first frame says where the dump goes, before it is written; like
    // the others, one that cannot be sent does not stop the dump.
    try {
      peer.progress(nlohmann::json{
          {"bytes_written", 0}, {"bytes_total", 0}, {"path", path}, {"type", DumpTypeName(type)}});
    } catch (...) {
    }
    request.progress = &SendProgress;
    request.progress_context = const_cast<PeerInfo*>(&peer);
  }
  dump::SelfDumpResult result;
  int err = dump::WriteSelfDump(request, &result);
  if (err == EBUSY) return Error(EBUSY, "", "another dump is being written; try again");
  if (err != 0 && result.writer_signal != 0) {
    return Error(err, "",
                 std::string("the dump writer process was killed by signal ") +
                     std::to_string(result.writer_signal) + " (SIG" +
                     SignalAbbrev(result.writer_signal) +
                     (result.writer_signal == SIGKILL ? ", out of memory?" : "") + ") writing " +
                     result.path);
  }
  if (err == ETIMEDOUT) {
    return Error(err, "",
                 std::string("the dump writer process wrote nothing for too long and was killed "
                             "(ETIMEDOUT); nothing was left at ") +
                     result.path);
  }
  if (err == ELOOP || err == EXDEV) {  // the directory changed after the checks above
    return Error(err, "",
                 "dump path " + path +
                     (err == ELOOP ? " has a symbolic link on the way" : " leads outside") +
                     " below the dump directory (CPPDIAG_DUMP_DIR); refusing");
  }
  if (err != 0) return DumpFailure(err, result);
  NoteTraceMarker("dump", {{"path", result.path},
                           {"type", DumpTypeName(result.type)},
                           {"bytes", result.size_bytes},
                           {"reason", reason},
                           {"pause_ms", Ms(result.pause_ns)}});
  return nlohmann::json{{"path", result.path},
                        {"type", DumpTypeName(result.type)},
                        {"bytes", result.size_bytes},
                        {"data_bytes", result.data_bytes},
                        {"threads", result.threads},
                        {"threads_not_captured", result.threads_not_captured},
                        {"duration_ms", Ms(result.duration_ns)},
                        // The time the target's threads were stopped.
                        {"pause_ms", Ms(result.pause_ns)},
                        {"mode", dump::SelfDumpModeName(result.mode)},
                        {"mode_reason", result.mode_reason}};
}

// The kernel keeps a process that is not dumpable (PR_SET_DUMPABLE 0, or
// any credential change: setuid, setgid, capabilities) from its own uid:
// no ptrace, no /proc/<pid>/mem. The socket follows it for everything that
// shows memory. Read at each request: the state can change at any time.
Status MayReadMemory(const PeerInfo& peer) {
  if (::prctl(PR_GET_DUMPABLE) == 1 || peer.uid == 0) return OkStatus();
  return Error(EPERM, "",
               "this process is not dumpable (PR_SET_DUMPABLE 0 or a credential change): "
               "only root may read its memory");
}

// `handler`, for root only while the process is not dumpable.
DiagnosticServer::Handler ReadsMemory(DiagnosticServer::Handler handler) {
  return [handler = std::move(handler)](const nlohmann::json& req,
                                        const PeerInfo& peer) -> Result<nlohmann::json> {
    CPPDIAG_RETURN_IF_ERROR(MayReadMemory(peer));
    return handler(req, peer);
  };
}

}  // namespace

DiagnosticServer::Handlers MakeRequestHandlers(const RuntimeInfo& runtime) {
  DiagnosticServer::Handlers h;
  h[Command::kProcessInfo] = [&runtime](const nlohmann::json&, const PeerInfo&) {
    return ProcessInfo(runtime);
  };
  // One reading of the counters; the CLI derives rates from two.
  h[Command::kCounters] = [](const nlohmann::json&, const PeerInfo&) -> Result<nlohmann::json> {
    return counters::SampleToJson(counters::CollectCounters());
  };
  // The live sampled heap; a target whose profiler is off answers with
  // sample_period_bytes 0 and no stacks, so the client can say why.
  // Stacks and mappings are memory (and addresses): as guarded as a dump.
  h[Command::kHeapSnapshot] =
      ReadsMemory([](const nlohmann::json&, const PeerInfo&) -> Result<nlohmann::json> {
        return HeapProfileToJson(heap::CollectHeapProfile());
      });
  // CPU or wall-clock samples streamed as progress frames (trace_request.h):
  // stacks are memory, as guarded as a dump. trace-stop ends it early.
  h[Command::kTrace] = ReadsMemory(&RunTrace);
  h[Command::kTraceStop] = [](const nlohmann::json&, const PeerInfo&) { return StopTrace(); };
  if (dump::SelfDumpPrepared()) {
    h[Command::kDump] = ReadsMemory([&runtime](const nlohmann::json& req, const PeerInfo& peer) {
      return Dump(runtime, req, peer);
    });
  }
  return h;
}

}  // namespace cppdiag
