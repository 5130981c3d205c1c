// modules: the files the process had mapped (NT_FILE), with the file read
// for each (under --sysroot; --exe for the executable), its build id and
// whether a symbol table and debug information were found.
#include <fmt/format.h>

#include "cli/analyze/command.h"
#include "cli/analyze/format.h"

namespace cppdiag::cli::analyze {
namespace {

Result<CommandOutput> Modules(Session& session, const CommandArgs& args) {
  if (!args.empty()) return Error::Invalid("takes no arguments");
  CPPDIAG_ASSIGN_OR_RETURN(CoreDebugInfo * debug, session.debug());
  CommandOutput out;
  out.json = nlohmann::json::array();
  out.text = fmt::format("{:<18} {:<24} {:<7} {:<5} {:<40} {}\n", "START", "NAME", "SYMBOLS",
                         "DEBUG", "BUILD ID", "FILE");
  for (const ModuleInfo& m : debug->ModulesWithSymbols()) {
    std::string file = m.opened.empty() ? "not read: " + m.why_not : m.opened;
    out.text +=
        fmt::format("{} {:<24} {:<7} {:<5} {:<40} {}\n", Address(m.start), Printable(m.name),
                    m.symbols ? "yes" : "no", m.debug_info ? "yes" : "no",
                    m.build_id.empty() ? "-" : m.build_id, Printable(file));
    nlohmann::json j = {{"name", m.name},
                        {"path", m.path},
                        {"start", m.start},
                        {"end", m.end},
                        {"symbols", m.symbols},
                        {"debug_info", m.debug_info},
                        {"executable", m.executable}};
    if (!m.build_id.empty()) j["build_id"] = m.build_id;
    if (!m.opened.empty()) j["file"] = m.opened;
    if (!m.why_not.empty()) j["not_read"] = m.why_not;
    out.json.push_back(std::move(j));
  }
  return out;
}

}  // namespace

const Command kModulesCommand{"modules", "modules",
                              "loaded modules: build id, symbols and debug info found, file read",
                              Modules};

}  // namespace cppdiag::cli::analyze
