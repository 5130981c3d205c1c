// The client side of the diagnostic socket, for the cppdiag CLI and tests:
// connect (to a socket file or an abstract name), send one request, read the
// reply.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "diag/ipc/protocol.h"

namespace cppdiag::ipc {

struct Endpoint {
  std::string path;           // a socket file (may go through /proc/<pid>/root)
  std::string abstract_name;  // or a name in the abstract namespace (no leading NUL)
  // The pid (as this process sees it) that must be listening: any process of
  // the network namespace could bind a predictable abstract name first, so
  // the client checks the server's SO_PEERCRED. 0: not checked.
  pid_t expected_pid = 0;
  std::string ToString() const { return path.empty() ? "@" + abstract_name : path; }
};

// Called with each progress frame's payload ({"bytes_written", "bytes_total", ...}).
using ProgressCallback = std::function<void(const nlohmann::json&)>;

// Sends `request` and returns the reply's JSON. An error reply becomes an
// Error carrying the server's one-line message. With `progress`, the request
// asks for progress frames ("progress": true is added) and each one is passed
// to it before the reply arrives; `timeout` then applies to each frame.
Result<nlohmann::json> Call(const Endpoint& endpoint, Command command,
                            const nlohmann::json& request,
                            std::chrono::milliseconds timeout = std::chrono::seconds(30),
                            const ProgressCallback& progress = nullptr);

}  // namespace cppdiag::ipc
