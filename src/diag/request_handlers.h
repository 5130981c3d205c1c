// The commands libcppdiag's diagnostic server answers: runtime code (it reads
// the runtime's settings), so it lives here, above the server (diag/ipc) that
// calls it, and dump/, heap/ and counters/ that it calls.
#pragma once

#include "diag/ipc/server.h"
#include "diag/runtime.h"

namespace cppdiag {

// The handlers for every supported command, bound to the running runtime.
ipc::DiagnosticServer::Handlers MakeRequestHandlers(const RuntimeInfo& runtime);

}  // namespace cppdiag
