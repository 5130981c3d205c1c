#include "cli/dump_request.h"

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/display.h"
#include "cli/target_watch.h"
#include "cli/terminal.h"
#include "common/parse.h"
#include "diag/ipc/client.h"

namespace cppdiag::cli {
namespace {

void Announce(const std::string& type, const std::string& path) {
  std::printf("Writing %s dump to %s\n", ForTerminal(type).c_str(), ForTerminal(path).c_str());
  std::fflush(stdout);
}

}  // namespace

DumpProgress::DumpProgress() : start_(std::chrono::steady_clock::now()) {}

void DumpProgress::Update(uint64_t written, uint64_t total) {
  if (!line_.active() || (written == 0 && total == 0)) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  constexpr double kMiB = 1024.0 * 1024.0;
  char text[128];
  if (total > 0) {
    std::snprintf(text, sizeof text, "  %3.0f%%  %.1f / %.1f MiB  %.1f s",
                  100.0 * static_cast<double>(written) / static_cast<double>(total),
                  static_cast<double>(written) / kMiB, static_cast<double>(total) / kMiB, elapsed);
  } else {
    std::snprintf(text, sizeof text, "  %.1f MiB  %.1f s", static_cast<double>(written) / kMiB,
                  elapsed);
  }
  line_.Show(text);
}

Result<DumpOutcome> RequestDump(const DiagTarget& target, const DumpRequestOptions& options) {
  nlohmann::json request = {{"overwrite", options.overwrite}};
  if (!options.type.empty()) request["type"] = options.type;
  if (!options.path.empty()) request["path"] = options.path;
  if (!options.trigger.empty()) request["trigger"] = options.trigger;
  TargetWatch watch(target.pid);
  DumpProgress line;
  bool announced = false;
  // The target's first progress frame names the path and type before the
  // dump is written (a target that sends none: announced with the reply).
  auto on_progress = [&](const nlohmann::json& p) {
    if (options.quiet) return;
    if (!announced && p.contains("path")) {
      Announce(p.value("type", "?"), p.value("path", "?"));
      announced = true;
    }
    line.Update(p.value("bytes_written", uint64_t{0}), p.value("bytes_total", uint64_t{0}));
  };
  // A full dump of a large process takes a while; the timeout is per frame.
  auto reply = ipc::Call(target.endpoint, ipc::Command::kDump, request, std::chrono::minutes(30),
                         on_progress);
  line.Clear();
  // A target killed during the dump (by the OOM killer, say) closes the
  // connection: say that, rather than what the read saw. An error reply
  // (EINVAL) comes from a target that is alive.
  if (!reply && reply.error().code() != EINVAL && watch.Exited(std::chrono::seconds(2))) {
    return Error(ESRCH, "", watch.ExitedDuring("the dump"));
  }
  if (!reply) {
    return Error(
        reply.error().code(), "",
        "dump of process " + std::to_string(target.pid) + " failed: " + reply.error().message());
  }
  DumpOutcome out;
  out.path = reply->value("path", "?");
  out.type = reply->value("type", "?");
  out.bytes = reply->value("bytes", uint64_t{0});
  out.pause_ms = reply->value("pause_ms", 0.0);
  out.mode = reply->value("mode", "?");
  if (options.quiet) return out;
  if (!announced) Announce(out.type, out.path);
  std::string reason = reply->value("mode_reason", "");
  std::string mode = reply->value("mode", "?") + (reason.empty() ? "" : ": " + reason);
  std::printf("Complete: %s in %.0f ms (threads paused %.1f ms, %s)\n",
              FormatBytes(out.bytes).c_str(), reply->value("duration_ms", 0.0),
              reply->value("pause_ms", 0.0), ForTerminal(mode).c_str());
  std::fflush(stdout);
  return out;
}

}  // namespace cppdiag::cli
