// A connected socket as a Beast SyncReadStream/SyncWriteStream whose reads
// and writes wait in poll() with a deadline, and whose reads also end when
// the server's wake eventfd becomes readable (shutdown). The fd is
// non-blocking, so a stalled client can hold its thread no longer than the
// deadline. Used by http_connection.cc only.
#pragma once

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
#include <cstddef>
#include <utility>

#include "common/scoped_fd.h"

namespace leakapp {

class PolledSocket {
 public:
  PolledSocket(cppdiag::ScopedFd fd, int wake_fd) : fd_(std::move(fd)), wake_fd_(wake_fd) {}

  void set_deadline(std::chrono::steady_clock::time_point deadline) { deadline_ = deadline; }

  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& buffers, boost::beast::error_code& ec) {
    auto buffer = FirstNonEmpty<boost::asio::mutable_buffer>(buffers);
    if (buffer.size() == 0) return ClearError(ec, 0);
    for (;;) {
      ssize_t n = ::recv(fd_.get(), buffer.data(), buffer.size(), 0);
      if (n > 0) return ClearError(ec, n);
      if (n == 0) {
        ec = boost::asio::error::eof;
        return 0;
      }
      if (!Retry(POLLIN, /*watch_wake=*/true, ec)) return 0;
    }
  }

  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& buffers, boost::beast::error_code& ec) {
    auto buffer = FirstNonEmpty<boost::asio::const_buffer>(buffers);
    for (;;) {
      ssize_t n = ::send(fd_.get(), buffer.data(), buffer.size(), MSG_NOSIGNAL);
      if (n >= 0) return ClearError(ec, n);
      // A reply already being written is finished even during shutdown.
      if (!Retry(POLLOUT, /*watch_wake=*/false, ec)) return 0;
    }
  }

  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& buffers) {
    boost::beast::error_code ec;
    size_t n = read_some(buffers, ec);
    if (ec) throw boost::beast::system_error(ec);
    return n;
  }

  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& buffers) {
    boost::beast::error_code ec;
    size_t n = write_some(buffers, ec);
    if (ec) throw boost::beast::system_error(ec);
    return n;
  }

  int fd() const { return fd_.get(); }

 private:
  template <class Buffer, class Buffers>
  static Buffer FirstNonEmpty(const Buffers& buffers) {
    // NOLINTNEXTLINE(readability-qualified-auto): a pointer for some sequences only
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      Buffer b(*it);
      if (b.size() > 0) return b;
    }
    return Buffer();
  }

  static size_t ClearError(boost::beast::error_code& ec, ssize_t n) {
    ec = {};
    return static_cast<size_t>(n);
  }

  // After a failed recv/send: false with `ec` set unless the error is EINTR
  // or EAGAIN and the socket becomes ready before the deadline or shutdown.
  bool Retry(short events, bool watch_wake, boost::beast::error_code& ec) {
    if (errno == EINTR) return true;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      ec.assign(errno, boost::beast::system_category());
      return false;
    }
    for (;;) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ -
                                                               std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ec = boost::beast::error::timeout;
        return false;
      }
      pollfd fds[2] = {{fd_.get(), events, 0}, {wake_fd_, POLLIN, 0}};
      int ready = ::poll(fds, watch_wake ? 2 : 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) {
        ec.assign(errno, boost::beast::system_category());
        return false;
      }
      if (watch_wake && fds[1].revents != 0) {
        ec = boost::asio::error::operation_aborted;
        return false;
      }
      if (fds[0].revents != 0) return true;  // ready, or an error recv/send reports
    }
  }

  cppdiag::ScopedFd fd_;
  int wake_fd_;
  std::chrono::steady_clock::time_point deadline_;
};

}  // namespace leakapp
