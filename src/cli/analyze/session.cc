#include "cli/analyze/session.h"

namespace cppdiag::cli::analyze {

Result<std::unique_ptr<Session>> Session::Open(const std::string& path, DebugOptions options) {
  CPPDIAG_RETURN_IF_ERROR(InstallTruncationGuard());
  CPPDIAG_ASSIGN_OR_RETURN(CoreFile core, CoreFile::Open(path));
  auto notes = DecodeNotes(core);
  if (!notes) return Error::Invalid(path + ": " + notes.error().message());
  // (notes' views point into the mapping, which moving the CoreFile keeps.)
  return std::unique_ptr<Session>(
      new Session(path, std::move(core), std::move(*notes), std::move(options)));
}

Result<CoreDebugInfo*> Session::debug() {
  if (!debug_) {
    CPPDIAG_ASSIGN_OR_RETURN(debug_, CoreDebugInfo::Create(core_, notes_, options_));
  }
  return debug_.get();
}

}  // namespace cppdiag::cli::analyze
