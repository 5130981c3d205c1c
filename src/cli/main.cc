// cppdiag: dumps, heap profiles, counters and traces of native processes,
// from the same pod, with no ptrace and no shell.
#include <cstdio>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "cli/display.h"

namespace cppdiag::cli {

int Fail(const std::string& message, int code) {
  // Messages carry what targets said (their names, paths, error replies):
  // escaped here, once, for every command.
  std::fprintf(stderr, "cppdiag: %s\n", ForTerminal(message).c_str());
  return code;
}

}  // namespace cppdiag::cli

int main(int argc, char** argv) {
  CLI::App app{"cppdiag: diagnostics for native (C/C++) processes in containers"};
  app.name("cppdiag");
  app.require_subcommand(1);
  app.set_version_flag("--version", "cppdiag 0.1.0");
  int exit_code = 0;
  cppdiag::cli::AddPsCommand(app, &exit_code);
  cppdiag::cli::AddDumpCommand(app, &exit_code);
  cppdiag::cli::AddAutoCollectCommand(app, &exit_code);
  cppdiag::cli::AddHeapCommand(app, &exit_code);
  cppdiag::cli::AddCountersCommand(app, &exit_code);
  cppdiag::cli::AddMonitorCommand(app, &exit_code);
  cppdiag::cli::AddTraceCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, not CLI11's usage dump: a script's log stays readable.
    return cppdiag::cli::Fail(std::string(e.what()) + " (see cppdiag --help)", 2);
  } catch (const std::exception& e) {
    // A subcommand's unexpected failure (std::bad_alloc, a filesystem error):
    // one line and a non-zero exit rather than std::terminate.
    return cppdiag::cli::Fail(e.what(), 1);
  }
  return exit_code;
}
