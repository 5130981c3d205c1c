#include "cli/ptrace_collect.h"

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <optional>

#include "cli/commands.h"
#include "cli/display.h"
#include "cli/dump_request.h"
#include "common/parse.h"
#include "diag/dump/dump_type.h"
#include "diag/dump/ptrace_dump.h"

namespace cppdiag::cli {
namespace {

std::atomic<bool> g_cancel{false};

void OnSignal(int) { g_cancel.store(true); }

// Catches the signals that would end the tool while it holds the target
// (a traced target survives its tracer, but the dump file would be left
// half written, and an injected fork's child would be left behind).
class ScopedCancelSignals {
 public:
  ScopedCancelSignals() {
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~ScopedCancelSignals() {
    for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &old_[i], nullptr);
  }

 private:
  static constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};
  struct sigaction old_[3];
};

}  // namespace

int CollectWithPtrace(const PtraceCollectOptions& o, std::string* written) {
  dump::PtraceDumpOptions d;
  d.pid = o.pid;
  d.path = o.output;
  d.overwrite = o.overwrite;
  if (!o.type.empty()) {
    auto type = ParseDumpType(o.type);
    if (!type) return Fail(type.error().message());
    d.type = *type;
  }
  if (o.snapshot == "stop") {
    d.mode = dump::PtraceSnapshotMode::kStop;
  } else if (o.snapshot == "fork") {
    d.mode = dump::PtraceSnapshotMode::kFork;
  } else if (!o.snapshot.empty()) {
    return Fail("invalid --snapshot '" + o.snapshot + "': expected fork or stop");
  }
  DumpProgress progress;
  const std::string type = DumpTypeName(d.type);
  d.on_start = [&](const std::string& path, const std::string&) {
    std::printf("Writing %s dump to %s\n", type.c_str(), ForTerminal(path).c_str());
    std::fflush(stdout);
  };
  d.progress = [&](uint64_t done, uint64_t total) { progress.Update(done, total); };
  std::optional<ScopedCancelSignals> signals;
  if (o.cancel != nullptr) {
    d.cancel = o.cancel;
  } else {
    g_cancel.store(false);
    d.cancel = &g_cancel;
    signals.emplace();
  }
  auto report = dump::WritePtraceDump(d);
  progress.Clear();
  if (!report) return Fail(report.error().message());
  if (!report->warning.empty()) std::fprintf(stderr, "cppdiag: %s\n", report->warning.c_str());
  std::string mode = report->mode + (report->mode_reason.empty() ? "" : ": " + report->mode_reason);
  std::printf("Complete: %s in %.0f ms (target paused %.1f ms, %s)\n",
              FormatBytes(report->size_bytes).c_str(), report->total_ms, report->pause_ms,
              ForTerminal(mode).c_str());
  std::fflush(stdout);
  if (written != nullptr) *written = report->path;
  return 0;
}

}  // namespace cppdiag::cli
