// The commands libcppdiag's diagnostic server answers. The server calls into
// dump/, heap/ and counters/ through these; they never call the server.
#pragma once

#include "diag/ipc/server.h"
#include "diag/runtime.h"

namespace cppdiag::ipc {

// The handlers for every supported command, bound to the running runtime.
DiagnosticServer::Handlers MakeHandlers(const RuntimeInfo& runtime);

}  // namespace cppdiag::ipc
