// cppdiag dump analyze DUMP: read a core (ours of any type, the kernel's,
// gdb's) without the process: threads, backtraces, mappings, modules, the
// cppdiag note's live heap, memory and symbols; at a prompt, or in batch
// with -c.
#include <memory>
#include <string>
#include <vector>

#include "cli/analyze/prompt.h"
#include "cli/analyze/session.h"
#include "cli/commands.h"

namespace cppdiag::cli {
namespace {

struct AnalyzeOptions {
  std::string dump;
  std::string exe;
  std::string sysroot;
  std::string debug_dir;
  bool json = false;
  std::vector<std::string> commands;
};

int Analyze(const AnalyzeOptions& o) {
  auto session = analyze::Session::Open(
      o.dump, {.executable = o.exe, .sysroot = o.sysroot, .debug_dir = o.debug_dir});
  if (!session) return Fail(session.error().message());
  if (!o.commands.empty()) return analyze::RunBatch(**session, o.commands, o.json);
  return analyze::RunPrompt(**session, o.json);
}

}  // namespace

void AddDumpAnalyzeCommand(CLI::App* dump, int* exit_code) {
  auto opts = std::make_shared<AnalyzeOptions>();
  auto* analyze = dump->add_subcommand(
      "analyze", "Read a core (cppdiag's, the kernel's, gdb's): threads, stacks, memory, heap");
  analyze->add_option("dump", opts->dump, "The core file")->required();
  analyze->add_option("--exe", opts->exe,
                      "The executable to read symbols from (default: the path the core names)");
  analyze->add_option("--sysroot", opts->sysroot,
                      "Directory standing for the target's / (a copy of its image's root)");
  analyze->add_option("--debug-dir", opts->debug_dir,
                      "Where build-id debug files are looked up (DIR/.build-id/; default "
                      "/usr/lib/debug)");
  analyze->add_flag("--json", opts->json, "Print each command's output as one line of JSON");
  analyze
      ->add_option("-c,--command", opts->commands,
                   "Run this command and exit (repeatable, run in order); else a prompt")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  analyze->callback([opts, exit_code] { *exit_code = Analyze(*opts); });
}

}  // namespace cppdiag::cli
