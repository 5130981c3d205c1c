// cppdiag ps: the processes this tool can reach through a diagnostic socket.
#include <cstdio>

#include "cli/commands.h"
#include "cli/discovery.h"
#include "cli/display.h"

namespace cppdiag::cli {

void AddPsCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("ps", "List processes that have a diagnostic socket");
  cmd->callback([exit_code] {
    auto targets = FindTargets();
    if (targets.empty()) {
      std::fprintf(stderr, "cppdiag: no process with a diagnostic socket in this PID namespace\n");
      *exit_code = 0;
      return;
    }
    std::printf("%8s  %-16s %s\n", "PID", "NAME", "COMMAND");
    // Names and command lines are the targets': escaped, not raw, on the terminal.
    for (const auto& t : targets) {
      std::printf("%8d  %-16s %s\n", t.pid, ForTerminal(t.name).c_str(),
                  ForTerminal(t.command_line).c_str());
    }
    *exit_code = 0;
  });
}

}  // namespace cppdiag::cli
