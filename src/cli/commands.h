// The cppdiag subcommands: each file adds one to the app. A command's
// callback stores its exit status in `*exit_code` (0 on success; on failure
// it has printed one line "cppdiag: <reason>" to stderr).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace cppdiag::cli {

void AddPsCommand(CLI::App& app, int* exit_code);
void AddDumpCommand(CLI::App& app, int* exit_code);
// `dump analyze`, under the `dump` command (analyze_command.cc).
void AddDumpAnalyzeCommand(CLI::App* dump, int* exit_code);
void AddAutoCollectCommand(CLI::App& app, int* exit_code);
void AddHeapCommand(CLI::App& app, int* exit_code);
void AddCountersCommand(CLI::App& app, int* exit_code);
void AddMonitorCommand(CLI::App& app, int* exit_code);
void AddTraceCommand(CLI::App& app, int* exit_code);

// Prints "cppdiag: <message>" on stderr, escaped for the terminal
// (ForTerminal), and returns `code`.
int Fail(const std::string& message, int code = 1);

}  // namespace cppdiag::cli
