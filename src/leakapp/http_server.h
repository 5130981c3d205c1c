// leakapp's HTTP/1.1 API (Boost.Beast, synchronous, one thread per
// connection): the endpoints of DESIGN.md's leakapp table, except GET / (the
// page comes later).
//
//   GET  /triggerMemoryLeak?chunkKb=1024&intervalMs=100&maxMb=0&pattern=vector
//          200 {"status":"started",...}; 409 while a leak runs; 400 on a bad value
//   GET  /stopMemoryLeak    stop leaking, keep what leaked
//   GET  /releaseMemory     free what leaked, give it back to the OS
//   GET  /status            JSON: leaked MB, RSS, heap limit, cgroup, leak state
//   GET  /healthz           200 "ok" while the process serves
//   GET  /readyz            200 once listening, 503 while shutting down
//   GET  /metrics           Prometheus text format (cppdiag_* and leakapp_*)
//   POST /crash?kind=segv|abort|oom   202, then the process crashes
//
// Errors are JSON: {"error": "...", "parameter": "chunkKb"} (400, the
// parameter named), {"error": "..."} for 404, 405 (with an Allow header), 409,
// 500 (a handler threw), 413/431 (body over 64 KiB, header over 8 KiB) and
// 503 (more than kMaxConnections connections at once). HEAD works wherever GET
// does. Each request is logged as "GET /target -> 200" (probes and scrapes at
// debug level). Connections are kept alive until the client closes, 10 s
// pass without a complete request, or the server shuts down.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "leakapp/leak_engine.h"

namespace leakapp {

class HttpServer {
 public:
  // Connections served at once (a thread each); more are answered 503.
  static constexpr int kMaxConnections = 32;

  // `heap_hard_limit_bytes` (nullopt when off) is reported by /status and
  // /metrics. `engine` must outlive the server.
  HttpServer(LeakEngine& engine, std::optional<uint64_t> heap_hard_limit_bytes);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens on host:port; from then on /readyz answers 200 (the
  // kernel queues connections until Serve() accepts them).
  cppdiag::Status Bind(const std::string& host, int port);

  // Accepts and serves until Shutdown(). Call once, after Bind succeeded.
  cppdiag::Status Serve();

  // Thread-safe, may come before Serve() starts: /readyz turns 503, the
  // server stops accepting, idle and reading connections are closed (a reply
  // being written is finished), and Serve() returns once every connection
  // thread has ended. Waits until the server has stopped accepting.
  void Shutdown();

  // A request as the handlers see it, and their reply (http_server.cc).
  struct Request;
  struct Response;

 private:
  struct Net;
  struct Route;
  void AddRoutes();
  // Runs the handler of the request's path and method; 405 or 404 if none,
  // 500 if it throws.
  void Dispatch(const Request& req, Response& res) const;
  // Reads requests off one accepted socket and answers them until the
  // connection ends. Never throws.
  void ServeConnection(int fd) const;

  LeakEngine& engine_;
  std::optional<uint64_t> heap_hard_limit_bytes_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::vector<Route> routes_;
  std::unique_ptr<Net> net_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> shutting_down_{false};
};

}  // namespace leakapp
