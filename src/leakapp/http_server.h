// leakapp's HTTP/1.1 server: its endpoints (api_routes.h) in a route table
// (http_router.h), served by Boost.Beast, synchronously, one thread per
// connection (http_listener.h, http_connection.h).
//
// Errors are JSON: {"error": "...", "parameter": "chunkKb"} (400, the
// parameter named), {"error": "..."} for 404, 405 (with an Allow header), 409,
// 500 (a handler threw), 413/431 (body over 64 KiB, header over 8 KiB). HEAD
// works wherever GET does. Each request is logged as "GET /target -> 200"
// (probes and scrapes at debug level). Connections are kept alive until the
// client closes, 10 s pass without a complete request, the server needs the
// slot of an idle one (over max_connections, http_listener.h), or the server
// shuts down.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"
#include "leakapp/http_listener.h"
#include "leakapp/http_router.h"
#include "leakapp/leak_engine.h"

namespace leakapp {

class HttpServer {
 public:
  // `heap_hard_limit_bytes` (nullopt when off) is reported by /status and
  // /metrics. `engine` must outlive the server. At most `max_connections`
  // are served at once; more wait (http_listener.h).
  HttpServer(LeakEngine& engine, std::optional<uint64_t> heap_hard_limit_bytes,
             int max_connections = HttpListener::kDefaultMaxConnections);
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens on host:port (0: a port the kernel picks, logged and
  // given by port()); from then on /readyz answers 200 (the kernel queues
  // connections until Serve() accepts them).
  cppdiag::Status Bind(const std::string& host, int port) { return listener_.Bind(host, port); }

  // The port bound, 0 before Bind().
  int port() const { return listener_.port(); }

  // Connection threads serving now.
  int open_connections() const { return listener_.open_connections(); }

  // Accepts and serves until Shutdown(). Call once, after Bind succeeded.
  cppdiag::Status Serve() { return listener_.Serve(); }

  // Thread-safe, may come before Serve() starts: /readyz turns 503, the
  // server stops accepting, idle and reading connections are closed (a reply
  // being written is finished), and Serve() returns once every connection
  // thread has ended. Waits until the server has stopped accepting.
  void Shutdown() { listener_.Shutdown(); }

 private:
  HttpRouter router_;  // complete before listener_ can call it
  HttpListener listener_;
};

}  // namespace leakapp
