// threads: every thread of the core, one line each: tid, name (the process's
// for its main thread: a core records no thread names), the signal it was
// handling (the crashing thread's), and its top frame.
#include <fmt/format.h>

#include "cli/analyze/command.h"
#include "cli/analyze/commands/thread_stacks.h"
#include "cli/analyze/format.h"

namespace cppdiag::cli::analyze {
namespace {

Result<CommandOutput> Threads(Session& session, const CommandArgs& args) {
  if (!args.empty()) return Error::Invalid("takes no arguments");
  CPPDIAG_ASSIGN_OR_RETURN(std::vector<ThreadView> views, ThreadViews(session));
  CPPDIAG_ASSIGN_OR_RETURN(CoreDebugInfo * debug, session.debug());
  const auto& process = session.notes().process;
  CommandOutput out;
  out.json = nlohmann::json::array();
  out.text = fmt::format("{} threads\n  {:<8} {:<16} {:<8} {}\n", views.size(), "TID", "NAME",
                         "SIGNAL", "TOP FRAME");
  for (size_t i = 0; i < views.size(); ++i) {
    const ThreadView& v = views[i];
    std::string name = process && process->pid == v.info->tid ? std::string(process->fname) : "";
    const Frame& top = v.stack.frames.front();
    std::string top_text = TopFunctionText(top, *debug);
    out.text +=
        fmt::format("{} {:<8} {:<16} {:<8} {}\n", i == 0 ? '*' : ' ', v.info->tid,
                    name.empty() ? "-" : Printable(name), SignalName(v.info->signal), top_text);
    nlohmann::json j = {{"tid", v.info->tid},
                        {"signal", v.info->signal},
                        {"top_frame", FrameJson(top)},
                        {"frames", v.stack.frames.size()}};
    if (!name.empty()) j["name"] = name;
    if (!v.stack.stopped.empty()) j["unwind_stopped"] = v.stack.stopped;
    out.json.push_back(std::move(j));
  }
  return out;
}

}  // namespace

const Command kThreadsCommand{"threads", "threads",
                              "every thread: tid, name, signal, top frame (* the first, "
                              "the crashing or dumping one)",
                              Threads};

}  // namespace cppdiag::cli::analyze
