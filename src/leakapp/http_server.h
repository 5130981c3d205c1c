// leakapp's HTTP API (cpp-httplib): the endpoints of DESIGN.md's leakapp
// table, except GET / (the page comes later).
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
// parameter named), {"error": "..."} for 404, 405 (with an Allow header), 409.
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

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace leakapp {

class HttpServer {
 public:
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
  // server stops accepting, and Serve() returns. Waits until it has stopped
  // or Serve() has returned.
  void Shutdown();

 private:
  struct Route;
  void AddRoutes();
  // Runs the handler of the request's path and method; 405 or 404 if none.
  void Dispatch(const httplib::Request& req, httplib::Response& res) const;

  LeakEngine& engine_;
  std::optional<uint64_t> heap_hard_limit_bytes_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::vector<Route> routes_;
  std::unique_ptr<httplib::Server> server_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> serve_returned_{false};
};

}  // namespace leakapp
