// A connected socket as a Beast SyncReadStream/SyncWriteStream whose reads
// and writes wait in poll() with a deadline, and whose reads also end when
// the server's wake eventfd becomes readable (shutdown). The fd is
// non-blocking, so a stalled client can hold its thread no longer than the
// deadline. A write hands the whole buffer sequence to one sendmsg(), so a
// reply Beast serializes as status line, headers and body leaves in one
// segment rather than one per piece. Data read marks the connection busy
// (ConnectionSocket::SetIdle). Used by http_connection.cc only.
#pragma once

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
#include <cstddef>
#include <utility>

#include "leakapp/http_connection.h"

namespace leakapp {

class PolledSocket {
 public:
  PolledSocket(ConnectionSocket& socket, int wake_fd)
      : socket_(socket), fd_(socket.fd()), wake_fd_(wake_fd) {}

  void set_deadline(std::chrono::steady_clock::time_point deadline) { deadline_ = deadline; }

  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& buffers, boost::beast::error_code& ec) {
    auto buffer = FirstNonEmpty<boost::asio::mutable_buffer>(buffers);
    if (buffer.size() == 0) return ClearError(ec, 0);
    for (;;) {
      ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
      if (n > 0) {
        socket_.SetIdle(false);
        return ClearError(ec, n);
      }
      if (n == 0) {
        ec = boost::asio::error::eof;
        return 0;
      }
      if (!Retry(POLLIN, /*watch_wake=*/true, ec)) return 0;
    }
  }

  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& buffers, boost::beast::error_code& ec) {
    iovec iov[kMaxIov];
    msghdr msg{};
    msg.msg_iov = iov;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers) && msg.msg_iovlen < kMaxIov; ++it) {
      boost::asio::const_buffer b(*it);
      if (b.size() == 0) continue;
      iov[msg.msg_iovlen++] = {const_cast<void*>(b.data()), b.size()};
    }
    if (msg.msg_iovlen == 0) return ClearError(ec, 0);
    for (;;) {
      ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
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

  int fd() const { return fd_; }

 private:
  // Beast's reply serializer yields a handful of buffers; any beyond this
  // go in the next write_some.
  static constexpr size_t kMaxIov = 16;

  template <class Buffer, class Buffers>
  static Buffer FirstNonEmpty(const Buffers& buffers) {
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
      pollfd fds[2] = {{fd_, events, 0}, {wake_fd_, POLLIN, 0}};
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

  ConnectionSocket& socket_;
  int fd_;
  int wake_fd_;
  std::chrono::steady_clock::time_point deadline_;
};

}  // namespace leakapp
