// Showing what a target supplied (its name, command line, paths, error
// messages, symbol names, its pod's name and namespace): a target is not
// trusted, and raw bytes on a terminal can retitle it, move the cursor,
// rewrite what was printed before or, on some terminals, answer back as if
// typed; a string pasted into a shell unquoted runs what it says.
//
//   std::printf("%s\n", ForTerminal(target.command_line).c_str());
//   std::printf("kubectl cp %s ./%s\n", ShellWord(path).c_str(), ShellWord(base).c_str());
#pragma once

#include <string>
#include <string_view>

namespace cppdiag::cli {

// `s` safe to print on a terminal, readable, in one line: printable ASCII
// and well-formed UTF-8 stay as they are; C0 controls, DEL and ESC become
// \t, \n, \r or \xNN; C1 controls and bytes that are not UTF-8 \xNN each;
// bidirectional overrides and line separators \u{NNNN}; a backslash "\\"
// (so the escaping cannot be mistaken for the string).
std::string ForTerminal(std::string_view s);

// `s` as one shell word (bash, zsh, ksh; POSIX sh when `s` is printable):
// unchanged if made only of [A-Za-z0-9_./:@%+,=-] (and not empty); else in
// single quotes, a ' written as '\''; and, when `s` holds what ForTerminal
// would escape, as $'...' with those bytes as \xNN, so the line is safe on
// a terminal too. Pasted into such a shell, the word is `s` again.
std::string ShellWord(std::string_view s);

}  // namespace cppdiag::cli
