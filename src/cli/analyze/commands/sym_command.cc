// sym ADDR: what an address is: its module and offset, the function (and
// those inlined there) with file:line.
#include <fmt/format.h>

#include "cli/analyze/command.h"
#include "cli/analyze/format.h"

namespace cppdiag::cli::analyze {
namespace {

Result<CommandOutput> Sym(Session& session, const CommandArgs& args) {
  if (args.size() != 1) return Error::Invalid("usage: sym ADDR");
  CPPDIAG_ASSIGN_OR_RETURN(uint64_t addr, ParseAddress(args[0]));
  CPPDIAG_ASSIGN_OR_RETURN(CoreDebugInfo * debug, session.debug());
  CommandOutput out;
  out.json = {{"address", addr}};
  const ModuleInfo* m = debug->ModuleAt(addr);
  std::vector<heap::SymbolFrame> functions = debug->Symbolize(addr);
  std::string where = m ? fmt::format("{}+{:#x}", Printable(m->name), addr - m->start) : "";
  if (m) {
    out.json["module"] = m->name;
    out.json["module_offset"] = addr - m->start;
  }
  if (functions.empty()) {
    const LoadSegment* seg = session.core().FindLoad(addr);
    out.text = fmt::format("{}: {}\n", ShortAddress(addr),
                           !where.empty() ? "no symbol, in " + where
                           : seg ? std::string("no symbol, in no module (anonymous memory)")
                                 : std::string("not mapped in the dump"));
    out.json["mapped"] = seg != nullptr;
    return out;
  }
  out.text =
      fmt::format("{}: {} ({})\n", ShortAddress(addr), FunctionText(functions.front()), where);
  for (size_t i = 1; i < functions.size(); ++i) {
    out.text += fmt::format("  inlined into {}\n", FunctionText(functions[i]));
  }
  Frame f{.pc = addr, .activation = true, .functions = functions, .module = m ? m->name : ""};
  out.json["functions"] = FrameJson(f)["functions"];
  return out;
}

}  // namespace

const Command kSymCommand{"sym", "sym ADDR",
                          "resolve an address: module+offset, function, file:line", Sym};

}  // namespace cppdiag::cli::analyze
