// The `dump analyze` front ends: batch (each command in turn) and the
// interactive prompt, with line editing and history from libedit (BSD
// licence; Debian's libedit2). History is kept in
// $HOME/.cppdiag_analyze_history.
//
// Output goes to stdout: a command's text, or with `json` its JSON on one
// line (JSON Lines when there are several). A failing command prints
// "cppdiag: <command>: <reason>" on stderr.
#pragma once

#include <string>
#include <vector>

#include "cli/analyze/session.h"

namespace cppdiag::cli::analyze {

// Runs `commands` in order and stops at the first that fails (`exit` ends
// the batch). Returns 0, or 1 when a command failed.
int RunBatch(Session& session, const std::vector<std::string>& commands, bool json);

// Reads commands until `exit`, `quit` or end of input. On a terminal, with
// a prompt, line editing and history; otherwise (a pipe, a file) the lines
// as they come, silently. Returns 0, or 1 when any command failed.
int RunPrompt(Session& session, bool json);

}  // namespace cppdiag::cli::analyze
