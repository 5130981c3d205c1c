// One accepted HTTP/1.1 connection (Boost.Beast, synchronous): reads
// requests, has `handler` answer each, and writes the replies, until the
// client closes, kIoTimeout passes without a complete request, a reply fails,
// or the server shuts down.
//
// What the handler never sees: a request Beast cannot read gets a JSON error
// and a close (400, 431 for a header over kMaxHeaderBytes, 413 for a body
// over kMaxBodyBytes); HEAD gets the headers of the reply without its body.
// The request target is split and decoded by query_string.h.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>

#include "common/scoped_fd.h"
#include "leakapp/http_message.h"

namespace leakapp {

inline constexpr size_t kMaxHeaderBytes = size_t{8} * 1024;
inline constexpr size_t kMaxBodyBytes = size_t{64} * 1024;
// A request (or the wait for the next one on a kept-alive connection) and a
// reply must each complete within this time.
inline constexpr std::chrono::seconds kIoTimeout{10};

// Serves the non-blocking socket `fd` until the connection ends, then closes
// it. Reading stops as soon as `wake_fd` is readable (a reply being written
// is finished); once `shutting_down` is set, replies say Connection: close.
// Never throws.
void ServeHttpConnection(cppdiag::ScopedFd fd, int wake_fd, const HttpHandler& handler,
                         const std::atomic<bool>& shutting_down);

}  // namespace leakapp
