// The threads of a core with their backtraces, for `threads` and `bt`: in
// the core's order (the crashing or dumping thread first); a thread libdwfl
// could not unwind keeps the one frame its registers give (rip), with why.
#pragma once

#include <vector>

#include "cli/analyze/core_debug.h"
#include "cli/analyze/core_notes.h"
#include "cli/analyze/session.h"
#include "common/status.h"

namespace cppdiag::cli::analyze {

struct ThreadView {
  const ThreadInfo* info = nullptr;
  ThreadStack stack;
};

Result<std::vector<ThreadView>> ThreadViews(Session& session);

}  // namespace cppdiag::cli::analyze
