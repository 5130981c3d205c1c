// bt [TID|all]: backtraces, from libdwfl's unwinding of the core (CFI, then
// frame pointers): each frame's pc, function, file:line and the functions
// inlined there. Without an argument, the first thread's (the crashing or
// dumping one).
#include <fmt/format.h>

#include "cli/analyze/command.h"
#include "cli/analyze/commands/thread_stacks.h"
#include "cli/analyze/format.h"

namespace cppdiag::cli::analyze {
namespace {

Result<CommandOutput> Bt(Session& session, const CommandArgs& args) {
  if (args.size() > 1) return Error::Invalid("usage: bt [TID|all]");
  CPPDIAG_ASSIGN_OR_RETURN(std::vector<ThreadView> views, ThreadViews(session));
  CPPDIAG_ASSIGN_OR_RETURN(CoreDebugInfo * debug, session.debug());
  if (views.empty()) return Error::Invalid("the core holds no threads (no NT_PRSTATUS)");
  std::vector<const ThreadView*> chosen;
  if (args.empty()) {
    chosen.push_back(&views.front());
  } else if (args[0] == "all") {
    for (const ThreadView& v : views) chosen.push_back(&v);
  } else {
    CPPDIAG_ASSIGN_OR_RETURN(uint64_t tid, ParseCount(args[0], INT32_MAX));
    for (const ThreadView& v : views) {
      if (static_cast<uint64_t>(v.info->tid) == tid) chosen.push_back(&v);
    }
    if (chosen.empty()) {
      return Error::Invalid(fmt::format("no thread {} in the core (see threads)", tid));
    }
  }
  CommandOutput out;
  out.json = nlohmann::json::array();
  for (const ThreadView* v : chosen) {
    if (!out.text.empty()) out.text += "\n";
    out.text += fmt::format("Thread {} ({}):\n", v->info->tid,
                            v->info->signal ? SignalName(v->info->signal) : "no signal");
    nlohmann::json frames = nlohmann::json::array();
    for (size_t i = 0; i < v->stack.frames.size(); ++i) {
      out.text += FrameText(v->stack.frames[i], i, *debug);
      frames.push_back(FrameJson(v->stack.frames[i]));
    }
    if (!v->stack.stopped.empty()) {
      out.text += fmt::format("  (unwinding stopped: {})\n", Printable(v->stack.stopped));
    }
    nlohmann::json j = {{"tid", v->info->tid}, {"signal", v->info->signal}, {"frames", frames}};
    if (!v->stack.stopped.empty()) j["unwind_stopped"] = v->stack.stopped;
    out.json.push_back(std::move(j));
  }
  return out;
}

}  // namespace

const Command kBtCommand{"bt", "bt [TID|all]",
                         "backtrace of the first thread, one thread, or all: function, "
                         "file:line, inlined frames",
                         Bt};

}  // namespace cppdiag::cli::analyze
