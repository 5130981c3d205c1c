// Where a dump requested over the diagnostic socket may be written: only in
// CPPDIAG_DUMP_DIR (or below it). The requester is trusted to the extent of
// its uid (SO_PEERCRED), but a dump holds secrets, and a path must not become
// a way to overwrite the target's files.
//
// Confinement holds by construction in the self-dump, which opens the dump
// directory once at start and creates the file beneath that descriptor with
// no ".." and no symbolic link (dump_file.h). What is here turns a request
// into that relative path and refuses what would fail there with a clear,
// one-line reason; its checks of the filesystem could be raced, and need not
// be right for the confinement to hold.
#pragma once

#include <string>

#include "common/status.h"

namespace cppdiag::ipc {

struct DumpPath {
  std::string relative;  // beneath the dump directory, e.g. "sub/core.1"
  std::string path;      // the dump directory's real path + "/" + relative (to show)
};

// Resolves `requested` (relative to `dump_dir`, or absolute below `dump_dir`
// as written or as it resolves: the dump directory itself may be a symbolic
// link, followed when the runtime starts). Refuses, with a one-line reason:
// an empty path or one ending in '/', a ".." component, an absolute path
// elsewhere, a symbolic link below the dump directory (on the way or at the
// path), anything that is not a regular file at the path, and an existing
// file unless `overwrite`.
Result<DumpPath> ResolveDumpPath(const std::string& requested, const std::string& dump_dir,
                                 bool overwrite);

}  // namespace cppdiag::ipc
