#include "cli/analyze/command.h"

#include <fmt/format.h>

#include <algorithm>

namespace cppdiag::cli::analyze {
namespace {

Result<CommandOutput> Help(Session&, const CommandArgs&);
Result<CommandOutput> Exit(Session&, const CommandArgs&) { return CommandOutput{}; }

const Command kHelpCommand{"help", "help", "list the commands", Help};
const Command kExitCommand{"exit", "exit", "leave the prompt (also: quit, Ctrl-D)", Exit};

const Command* const kCommands[] = {&kInfoCommand, &kThreadsCommand, &kBtCommand,
                                    &kMapsCommand, &kModulesCommand, &kHeapstatCommand,
                                    &kHeapCommand, &kExamineCommand, &kSymCommand,
                                    &kHelpCommand, &kExitCommand};

std::vector<Command> Table() {
  std::vector<Command> out;
  for (const Command* c : kCommands) out.push_back(*c);
  return out;
}

Result<CommandOutput> Help(Session&, const CommandArgs&) {
  CommandOutput out;
  out.json = nlohmann::json::array();
  for (const Command& c : AllCommands()) {
    out.text += fmt::format("  {:<16} {}\n", c.usage, c.summary);
    out.json.push_back({{"command", c.name}, {"usage", c.usage}, {"summary", c.summary}});
  }
  return out;
}

}  // namespace

std::span<const Command> AllCommands() {
  static const std::vector<Command> table = Table();
  return table;
}

std::vector<std::string> SplitWords(std::string_view line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.emplace_back(line.substr(start, i - start));
  }
  return words;
}

Result<CommandOutput> RunCommandLine(Session& session, std::string_view line) {
  std::vector<std::string> words = SplitWords(line);
  if (words.empty()) return Error::Invalid("empty command (try help)");
  std::string name = words.front();
  if (name == "quit") name = "exit";
  auto commands = AllCommands();
  auto it = std::find_if(commands.begin(), commands.end(),
                         [&](const Command& c) { return name == c.name; });
  if (it == commands.end()) {
    return Error::Invalid(fmt::format("unknown command '{}' (try help)", Printable(name)));
  }
  words.erase(words.begin());
  auto out = it->run(session, words);
  if (!out) return Error::Invalid(fmt::format("{}: {}", it->name, out.error().message()));
  return out;
}

std::string JsonLine(const nlohmann::json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace cppdiag::cli::analyze
