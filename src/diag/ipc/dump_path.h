// Where a dump requested over the diagnostic socket may be written: only in
// CPPDIAG_DUMP_DIR (or below it). The requester is trusted to the extent of
// its uid (SO_PEERCRED), but a dump holds secrets, and a path must not become
// a way to overwrite the target's files.
#pragma once

#include <string>

#include "common/status.h"

namespace cppdiag::ipc {

// Resolves `requested` (absolute, or relative to `dump_dir`) to the final
// path of a new dump. Refuses, with a one-line reason: a ".." component, a
// directory that resolves outside `dump_dir` (symlinked directories
// included), a symbolic link at the path, anything that is not a regular
// file at the path, and an existing file unless `overwrite`.
Result<std::string> ResolveDumpPath(const std::string& requested, const std::string& dump_dir,
                                    bool overwrite);

}  // namespace cppdiag::ipc
