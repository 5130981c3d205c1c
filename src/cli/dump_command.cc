// cppdiag dump collect: ask a process to write its own dump over its
// diagnostic socket (no ptrace: the tool needs no capability, and the dump
// lands in the target's own filesystem), or, with --ptrace, dump any process
// from the tool (ptrace_collect.h). `dump analyze` is added from
// analyze_command.cc.
#include <string>

#include "cli/commands.h"
#include "cli/discovery.h"
#include "cli/dump_request.h"
#include "cli/options.h"
#include "cli/ptrace_collect.h"

namespace cppdiag::cli {
namespace {

struct CollectOptions {
  int pid = 0;
  std::string output;
  std::string type;
  bool overwrite = false;
  bool ptrace = false;
  std::string snapshot;
};

int Collect(const CollectOptions& o) {
  if (o.ptrace) {
    return CollectWithPtrace({.pid = o.pid,
                              .output = o.output,
                              .type = o.type,
                              .snapshot = o.snapshot,
                              .overwrite = o.overwrite});
  }
  if (!o.snapshot.empty()) return Fail("--snapshot applies to --ptrace dumps only");
  auto target = FindTarget(o.pid);
  if (!target) return Fail(target.error().message());
  auto dump = RequestDump(*target, {.path = o.output, .type = o.type, .overwrite = o.overwrite});
  return dump ? 0 : Fail(dump.error().message());
}

}  // namespace

void AddDumpCommand(CLI::App& app, int* exit_code) {
  auto* dump =
      app.add_subcommand("dump", "Collect dumps (a process writes a core of itself) and read them");
  dump->require_subcommand(1);
  auto opts = std::make_shared<CollectOptions>();
  auto* collect = dump->add_subcommand(
      "collect", "Ask a process to write a dump of itself, or dump any process with --ptrace");
  collect->add_option("-p,--process-id", opts->pid, "Target process id")->required();
  collect->add_option("-o,--output", opts->output,
                      "Dump path in the target's filesystem (default: its CPPDIAG_DUMP_NAME); with "
                      "--ptrace, in this tool's (default: core.<name>.<pid>.<time> here)");
  AddDumpTypeOption(collect, &opts->type);
  collect->add_flag("--overwrite", opts->overwrite, "Replace an existing file at the path");
  collect->add_flag("--ptrace", opts->ptrace,
                    "Dump a process without libcppdiag with ptrace; this tool writes the file "
                    "(needs CAP_SYS_PTRACE or Yama ptrace_scope 0 and the same uid)");
  collect
      ->add_option("--snapshot", opts->snapshot,
                   "With --ptrace: fork (the target pauses only for an injected copy-on-write "
                   "fork; the default when the cgroup has room) or stop (stopped for the whole "
                   "write)")
      ->check(CLI::IsMember({"fork", "stop"}));
  collect->callback([opts, exit_code] { *exit_code = Collect(*opts); });
  AddDumpAnalyzeCommand(dump, exit_code);
}

}  // namespace cppdiag::cli
