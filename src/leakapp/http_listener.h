// The listening side of leakapp's HTTP server: binds, accepts, and serves
// each connection on a thread of its own (http_connection.h), at most
// max_connections at once (kDefaultMaxConnections). A client beyond them is
// never refused: it waits in the listen backlog, and the connection idle
// longest is closed to make room for it (so idle keep-alive clients cannot
// keep a probe out); if none is idle, it waits until one ends. Accepted
// sockets get TCP_NODELAY. Shutdown stops accepting and ends every
// connection promptly.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "leakapp/http_message.h"

namespace leakapp {

class HttpListener {
 public:
  // Connections served at once (a thread each, ~10 KiB of it resident when
  // idle); more wait in the backlog.
  static constexpr int kDefaultMaxConnections = 1024;
  // At the cap with nobody idle, how often the listener looks again.
  static constexpr std::chrono::milliseconds kCapRecheck{50};

  // `handler` answers every request, on the connection's thread.
  explicit HttpListener(HttpHandler handler, int max_connections = kDefaultMaxConnections);
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Binds and listens on host:port (port 0: one the kernel picks, see
  // port()); from then on ready() is true (the kernel queues connections
  // until Serve() accepts them). Logs "Listening on http://HOST:PORT" with
  // the port bound.
  cppdiag::Status Bind(const std::string& host, int port);

  // The port bound by Bind(), 0 before.
  int port() const { return port_; }

  // Connection threads serving now (each ends when its connection closes).
  int open_connections() const { return open_connections_; }

  // Accepts and serves until Shutdown(). Call once, after Bind succeeded.
  cppdiag::Status Serve();

  // Thread-safe, may come before Serve() starts: ready() turns false, the
  // listener stops accepting, idle and reading connections are closed (a
  // reply being written is finished), and Serve() returns once every
  // connection thread has ended. Waits until the listener has stopped
  // accepting.
  void Shutdown();

  // Bound, and not shutting down.
  bool ready() const { return bound_ && !shutting_down_; }

 private:
  struct Net;

  HttpHandler handler_;
  int max_connections_;
  std::unique_ptr<Net> net_;
  std::atomic<bool> bound_{false};
  std::atomic<int> port_{0};
  std::atomic<int> open_connections_{0};
  std::atomic<bool> shutting_down_{false};
};

}  // namespace leakapp
