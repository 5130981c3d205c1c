// The commands of `dump analyze`: each one in its own file under commands/,
// described by a Command; RunCommandLine splits a line and runs it.
//
// Every command answers both ways: text for a terminal (strings from the
// core already escaped with Printable) and JSON (--json), built together.
//
//   CPPDIAG_ASSIGN_OR_RETURN(CommandOutput out, RunCommandLine(session, "bt all"));
//   std::fputs(out.text.c_str(), stdout);
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli/analyze/session.h"
#include "common/status.h"

namespace cppdiag::cli::analyze {

// clang-tidy 14 sees a throw in nlohmann::json's destructor's assertions;
// its moves and destructor are noexcept.
// NOLINTNEXTLINE(bugprone-exception-escape): see above
struct CommandOutput {
  std::string text;  // ends with a newline (or is empty)
  nlohmann::json json;
};

using CommandArgs = std::vector<std::string>;  // the words after the command's name
using CommandFn = Result<CommandOutput> (*)(Session& session, const CommandArgs& args);

struct Command {
  const char* name;
  const char* usage;    // "bt [TID|all]"
  const char* summary;  // one line for `help`
  CommandFn run;
};

// Defined each in its own file under commands/.
extern const Command kInfoCommand;
extern const Command kThreadsCommand;
extern const Command kBtCommand;
extern const Command kMapsCommand;
extern const Command kModulesCommand;
extern const Command kHeapstatCommand;
extern const Command kHeapCommand;
extern const Command kExamineCommand;
extern const Command kSymCommand;

// Every command, `help` and `exit` included (exit's run is never called:
// the prompt ends on it), in the order `help` lists them.
std::span<const Command> AllCommands();

// The line split at spaces and tabs (no quoting: no command takes a string).
std::vector<std::string> SplitWords(std::string_view line);

// Runs one line ("bt 1234"). Errors: an empty line, an unknown command
// ("unknown command 'foo' (try help)"), or the command's own, one line each.
Result<CommandOutput> RunCommandLine(Session& session, std::string_view line);

// JSON as one line of text, bytes that are not UTF-8 replaced (a core's
// strings may be anything).
std::string JsonLine(const nlohmann::json& json);

}  // namespace cppdiag::cli::analyze
