// cppdiag: dumps, heap profiles, counters and traces of native processes,
// from the same pod, with no ptrace and no shell.
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "cli/display.h"
#include "common/status.h"

namespace cppdiag::cli {

int Fail(const std::string& message, int code) {
  // Messages carry what targets said (their names, paths, error replies):
  // escaped here, once, for every command.
  std::fprintf(stderr, "cppdiag: %s\n", ForTerminal(message).c_str());
  return code;
}

namespace {

// Every command prints with printf and std::cout and ignores what each call
// returns; a write error (a full disk, an I/O error) is caught here, once,
// before exit: the stream's error flag stays set until then.
int CheckStdout(int code) {
  // std::cout writes through stdout's buffer (synced with stdio): one fflush
  // sends what both hold, and its errno says why a write failed. A write that
  // failed earlier (std::endl flushes) left only the error flag.
  std::string error;
  if (std::fflush(stdout) != 0) {
    error = Error::FromErrno("write", "standard output").message();
  } else if (std::ferror(stdout) != 0 || !std::cout.flush()) {
    error = "write standard output: failed, the output is incomplete";
  }
  if (error.empty()) return code;
  std::fprintf(stderr, "cppdiag: %s\n", error.c_str());
  return code != 0 ? code : 1;
}

int Run(int argc, char** argv) {
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
    return Fail(std::string(e.what()) + " (see cppdiag --help)", 2);
  } catch (const std::exception& e) {
    // A subcommand's unexpected failure (std::bad_alloc, a filesystem error):
    // one line and a non-zero exit rather than std::terminate.
    return Fail(e.what(), 1);
  }
  return exit_code;
}

}  // namespace
}  // namespace cppdiag::cli

int main(int argc, char** argv) {
  int code = 1;
  try {
    code = cppdiag::cli::Run(argc, argv);
  } catch (const std::exception& e) {
    // Setting the commands up failed (std::bad_alloc): one line, not std::terminate.
    code = cppdiag::cli::Fail(e.what(), 1);
  }
  return cppdiag::cli::CheckStdout(code);
}
