#include "cli/analyze/prompt.h"

#include <editline/readline.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli/analyze/command.h"

namespace cppdiag::cli::analyze {
namespace {

bool IsExit(const std::string& line) {
  std::vector<std::string> words = SplitWords(line);
  return !words.empty() && (words[0] == "exit" || words[0] == "quit");
}

// Runs one line and prints what it gives; false when it failed.
bool RunAndPrint(Session& session, const std::string& line, bool json) {
  auto out = RunCommandLine(session, line);
  if (!out) {
    std::fflush(stdout);
    std::fprintf(stderr, "cppdiag: %s\n", out.error().message().c_str());
    return false;
  }
  if (json) {
    std::fputs((JsonLine(out->json) + "\n").c_str(), stdout);
  } else {
    std::fputs(out->text.c_str(), stdout);
  }
  std::fflush(stdout);
  return true;
}

std::string HistoryPath() {
  const char* home = std::getenv("HOME");
  return home && *home ? std::string(home) + "/.cppdiag_analyze_history" : std::string();
}

int InteractiveLoop(Session& session, bool json) {
  using_history();
  stifle_history(1000);
  std::string history = HistoryPath();
  if (!history.empty()) read_history(history.c_str());
  std::fprintf(stdout, "Reading %s. Type help for the commands, exit to leave.\n",
               Printable(session.path()).c_str());
  bool failed = false;
  for (;;) {
    char* raw = readline("(cppdiag) ");
    if (raw == nullptr) {  // Ctrl-D
      std::fputs("\n", stdout);
      break;
    }
    std::string line = raw;
    std::free(raw);
    if (SplitWords(line).empty()) continue;
    add_history(line.c_str());
    if (IsExit(line)) break;
    failed |= !RunAndPrint(session, line, json);
  }
  if (!history.empty()) write_history(history.c_str());
  return failed ? 1 : 0;
}

}  // namespace

int RunBatch(Session& session, const std::vector<std::string>& commands, bool json) {
  for (const std::string& c : commands) {
    if (IsExit(c)) break;
    if (!RunAndPrint(session, c, json)) return 1;
  }
  return 0;
}

int RunPrompt(Session& session, bool json) {
  if (::isatty(STDIN_FILENO)) return InteractiveLoop(session, json);
  bool failed = false;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (SplitWords(line).empty()) continue;
    if (IsExit(line)) break;
    failed |= !RunAndPrint(session, line, json);
  }
  return failed ? 1 : 0;
}

}  // namespace cppdiag::cli::analyze
