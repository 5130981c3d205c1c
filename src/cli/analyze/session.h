// Session: one core opened for `dump analyze`, what its commands share: the
// core (mapped, validated), its decoded notes, and its modules, symbols and
// backtraces (CoreDebugInfo, set up on first use: `info` and `maps` never
// open a module).
//
//   CPPDIAG_ASSIGN_OR_RETURN(auto session, Session::Open("core.123", {}));
//   CPPDIAG_ASSIGN_OR_RETURN(CoreDebugInfo* debug, session->debug());
#pragma once

#include <memory>
#include <string>

#include "cli/analyze/core_debug.h"
#include "cli/analyze/core_file.h"
#include "cli/analyze/core_notes.h"
#include "common/status.h"

namespace cppdiag::cli::analyze {

class Session {
 public:
  // Maps and validates the core and decodes its notes: any error is one
  // line naming the file ("core.1: truncated: ...", "core.1: not a core: ...").
  static Result<std::unique_ptr<Session>> Open(const std::string& path, DebugOptions options);

  const std::string& path() const { return path_; }
  const CoreFile& core() const { return core_; }
  const CoreNotes& notes() const { return notes_; }
  Result<CoreDebugInfo*> debug();

 private:
  Session(std::string path, CoreFile core, CoreNotes notes, DebugOptions options)
      : path_(std::move(path)),
        core_(std::move(core)),
        notes_(std::move(notes)),
        options_(std::move(options)) {}
  std::string path_;
  CoreFile core_;
  CoreNotes notes_;
  DebugOptions options_;
  std::unique_ptr<CoreDebugInfo> debug_;
};

}  // namespace cppdiag::cli::analyze
