#include "cli/monitor/action.h"

#include <time.h>

#include <cstdio>

#include "cli/discovery.h"
#include "cli/dump_request.h"
#include "common/parse.h"
#include "diag/dump/dump_type.h"
#include "diag/dump/ptrace_dump.h"

namespace cppdiag::cli::monitor {
namespace {

// <dir>/core.<comm>.<pid>.<unix time>.<trigger>.<n>, or "" (the default name).
std::string DumpName(const ActionTarget& t, const Firing& f, const MonitorOptions& o) {
  if (o.dir.empty()) return "";
  return o.dir + "/core." + (t.comm.empty() ? "process" : t.comm) + "." + std::to_string(t.pid) +
         "." + std::to_string(::time(nullptr)) + "." + f.trigger + "." + std::to_string(t.index);
}

Result<ActionDone> PtraceDump(const ActionTarget& t, const Firing& f, const MonitorOptions& o,
                              const std::atomic<bool>* stop) {
  dump::PtraceDumpOptions d;
  d.pid = t.pid;
  d.path = DumpName(t, f, o);
  if (!o.type.empty()) {
    auto type = ParseDumpType(o.type);
    if (!type) return type.error();
    d.type = *type;
  }
  d.cancel = stop;
  d.reason = "monitor: " + f.trigger + (f.value.empty() ? "" : " " + f.value);
  if (t.dying) d.mode = dump::PtraceSnapshotMode::kStop;
  CPPDIAG_ASSIGN_OR_RETURN(dump::PtraceDumpReport r, dump::WritePtraceDump(d));
  char detail[160];
  std::snprintf(detail, sizeof detail, "%s, %s, target paused %.1f ms, %s", DumpTypeName(d.type),
                FormatBytes(r.size_bytes).c_str(), r.pause_ms, r.mode.c_str());
  return ActionDone{r.path, detail};
}

}  // namespace

Result<ActionDone> WriteDump(const ActionTarget& t, const Firing& f, const MonitorOptions& o,
                             const std::atomic<bool>* stop) {
  if (t.session == nullptr) {
    if (auto target = FindTarget(t.pid)) {
      CPPDIAG_ASSIGN_OR_RETURN(
          DumpOutcome dump,
          RequestDump(*target, {.path = DumpName(t, f, o), .type = o.type, .quiet = true}));
      char detail[160];
      std::snprintf(detail, sizeof detail, "%s, %s, threads paused %.1f ms, %s, by the target",
                    dump.type.c_str(), FormatBytes(dump.bytes).c_str(), dump.pause_ms,
                    dump.mode.c_str());
      return ActionDone{dump.path, detail};
    }
  }
  return PtraceDump(t, f, o, stop);
}

}  // namespace cppdiag::cli::monitor
