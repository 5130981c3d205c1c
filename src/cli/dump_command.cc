// cppdiag dump collect: ask a process to write its own dump over its
// diagnostic socket (no ptrace: the tool needs no capability, and the dump
// lands in the target's own filesystem).
#include <cstdio>
#include <optional>

#include "cli/commands.h"
#include "cli/discovery.h"
#include "common/parse.h"

namespace cppdiag::cli {
namespace {

struct CollectOptions {
  int pid = 0;
  std::string output;
  std::string type;
  bool overwrite = false;
};

int Collect(const CollectOptions& o) {
  auto target = FindTarget(o.pid);
  if (!target) return Fail(target.error().message());
  nlohmann::json request = {{"overwrite", o.overwrite}};
  if (!o.type.empty()) request["type"] = o.type;
  if (!o.output.empty()) request["path"] = o.output;
  auto reply = ipc::Call(target->endpoint, ipc::Command::kDump, request, std::chrono::minutes(30));
  if (!reply)
    return Fail("dump of process " + std::to_string(o.pid) + " failed: " + reply.error().message());
  std::printf("Writing %s dump to %s\n", reply->value("type", "?").c_str(),
              reply->value("path", "?").c_str());
  std::printf("Complete: %s in %.0f ms (threads paused %.1f ms, %s)\n",
              FormatBytes(reply->value("bytes", uint64_t{0})).c_str(),
              reply->value("duration_ms", 0.0), reply->value("pause_ms", 0.0),
              reply->value("mode", "?").c_str());
  return 0;
}

}  // namespace

void AddDumpCommand(CLI::App& app, int* exit_code) {
  auto* dump = app.add_subcommand("dump", "Collect or analyze dumps");
  dump->require_subcommand(1);
  auto opts = std::make_shared<CollectOptions>();
  auto* collect = dump->add_subcommand("collect", "Ask a process to write a dump of itself");
  collect->add_option("-p,--process-id", opts->pid, "Target process id")->required();
  collect->add_option("-o,--output", opts->output,
                      "Dump path in the target's filesystem (default: its CPPDIAG_DUMP_NAME)");
  collect->add_option("--type", opts->type, "full, heap, mini or triage (default: the target's)")
      ->check(CLI::IsMember({"full", "heap", "mini", "triage", "1", "2", "3", "4"}));
  collect->add_flag("--overwrite", opts->overwrite, "Replace an existing file at the path");
  collect->callback([opts, exit_code] { *exit_code = Collect(*opts); });
}

}  // namespace cppdiag::cli
