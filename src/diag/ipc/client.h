// The client side of the diagnostic socket, for the cppdiag CLI and tests:
// connect (to a socket file or an abstract name), send one request, read the
// reply.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "diag/ipc/protocol.h"

namespace cppdiag::ipc {

struct Endpoint {
  std::string path;           // a socket file (may go through /proc/<pid>/root)
  std::string abstract_name;  // or a name in the abstract namespace (no leading NUL)
  std::string ToString() const { return path.empty() ? "@" + abstract_name : path; }
};

// Sends `request` and returns the reply's JSON. An error reply becomes an
// Error carrying the server's one-line message.
Result<nlohmann::json> Call(const Endpoint& endpoint, Command command,
                            const nlohmann::json& request,
                            std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace cppdiag::ipc
