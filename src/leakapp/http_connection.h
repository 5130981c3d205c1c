// One accepted HTTP/1.1 connection (Boost.Beast, synchronous): reads
// requests, has `handler` answer each, and writes the replies, until the
// client closes, kIoTimeout passes without a complete request, a reply fails,
// the listener closes it for being idle at the connection cap, or the server
// shuts down.
//
// What the handler never sees: a request Beast cannot read gets a JSON error
// and a close (400, 431 for a header over kMaxHeaderBytes, 413 for a body
// over kMaxBodyBytes); HEAD gets the headers of the reply without its body.
// The request target is split and decoded by query_string.h. Each reply
// leaves in one sendmsg() (status line, headers and body gathered), on a
// socket the listener set TCP_NODELAY on.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <utility>

#include "common/scoped_fd.h"
#include "leakapp/http_message.h"

namespace leakapp {

inline constexpr size_t kMaxHeaderBytes = size_t{8} * 1024;
inline constexpr size_t kMaxBodyBytes = size_t{64} * 1024;
// A request (or the wait for the next one on a kept-alive connection) and a
// reply must each complete within this time.
inline constexpr std::chrono::seconds kIoTimeout{10};

// A connection's socket and whether it waits for a request, shared by the
// connection's thread and the listener: at the connection cap the listener
// closes the connection idle longest (CloseIfIdle) to make room for a new
// one, so that idle keep-alive clients cannot keep a probe out.
class ConnectionSocket {
 public:
  using Clock = std::chrono::steady_clock;

  explicit ConnectionSocket(cppdiag::ScopedFd fd) : fd_(std::move(fd)) {}

  int fd() const { return fd_.get(); }

  // The connection's thread: waiting for a request from now on (or not).
  void SetIdle(bool idle) {
    idle_since_ns_.store(idle ? Clock::now().time_since_epoch().count() : 0,
                         std::memory_order_relaxed);
  }
  // When it became idle, or nullopt while a request is read or answered.
  std::optional<Clock::time_point> idle_since() const {
    auto ns = idle_since_ns_.load(std::memory_order_relaxed);
    if (ns == 0) return std::nullopt;
    return Clock::time_point(Clock::duration(ns));
  }

  // The listener: ends the connection if it is still idle and open; its
  // thread then reads end-of-stream and finishes. True if it did. (As with
  // any server that closes idle keep-alive connections, a request the client
  // sends at that very moment gets the close instead of a reply; clients
  // retry such requests on a new connection.)
  bool CloseIfIdle() {
    std::lock_guard lock(mu_);
    if (!fd_.is_valid() || idle_since_ns_.load(std::memory_order_relaxed) == 0) return false;
    return ::shutdown(fd_.get(), SHUT_RDWR) == 0;
  }

  // The connection's thread, once done with the socket.
  void Close() {
    std::lock_guard lock(mu_);
    fd_.reset();
  }

 private:
  std::mutex mu_;  // CloseIfIdle against Close: never shut down a reused fd
  cppdiag::ScopedFd fd_;
  std::atomic<Clock::rep> idle_since_ns_{0};
};

// Serves the non-blocking socket until the connection ends, then closes it.
// Reading stops as soon as `wake_fd` is readable (a reply being written is
// finished); once `shutting_down` is set, replies say Connection: close.
// Never throws.
void ServeHttpConnection(ConnectionSocket& socket, int wake_fd, const HttpHandler& handler,
                         const std::atomic<bool>& shutting_down);

}  // namespace leakapp
