#include "cli/analyze/commands/thread_stacks.h"

namespace cppdiag::cli::analyze {

Result<std::vector<ThreadView>> ThreadViews(Session& session) {
  CPPDIAG_ASSIGN_OR_RETURN(CoreDebugInfo * debug, session.debug());
  const std::vector<ThreadStack>& stacks = debug->Backtraces();
  std::vector<ThreadView> out;
  for (const ThreadInfo& t : session.notes().threads) {
    ThreadView v;
    v.info = &t;
    for (const ThreadStack& s : stacks) {
      if (s.tid == t.tid) v.stack = s;
    }
    if (v.stack.frames.empty()) {
      v.stack.tid = t.tid;
      Frame top{.pc = t.regs.rip, .activation = true, .functions = debug->Symbolize(t.regs.rip)};
      if (const ModuleInfo* m = debug->ModuleAt(t.regs.rip)) top.module = m->name;
      v.stack.frames.push_back(std::move(top));
      if (v.stack.stopped.empty()) {
        v.stack.stopped =
            debug->unwind_error().empty() ? "no frame unwound" : debug->unwind_error();
      }
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace cppdiag::cli::analyze
