#include "leakapp/http_listener.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <condition_variable>
#include <exception>
#include <list>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "common/scoped_fd.h"
#include "leakapp/http_connection.h"

namespace leakapp {

namespace net = boost::asio;

// The listening socket, and an eventfd that Shutdown() makes readable for
// good: every poll() of the accept loop and of the connections watches it.
struct HttpListener::Net {
  net::io_context ioc;
  net::ip::tcp::acceptor acceptor{ioc};
  cppdiag::ScopedFd wake{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  std::mutex mu;
  std::condition_variable accepting_changed;
  bool accepting = false;  // Serve()'s accept loop runs
};

namespace {

// What a client that gets no thread is told, without waiting on it.
// A fixed reply, so that refusing a connection allocates nothing (it is also
// the answer when the heap hard limit leaves no memory for a thread).
constexpr std::string_view kBusyBody = R"({"error":"too many connections; try again"})"
                                       "\n";
constexpr std::string_view kBusyReply =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Content-Length: 44\r\nConnection: close\r\n\r\n"
    R"({"error":"too many connections; try again"})"
    "\n";
static_assert(kBusyBody.size() == 44);

void RejectBusy(int fd) {
  (void)::send(fd, kBusyReply.data(), kBusyReply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  // Half-close and drain what the client already sent: closing with unread
  // data would reset the connection, and a reset can discard the 503.
  ::shutdown(fd, SHUT_WR);
  char sink[4096];
  for (int i = 0; i < 16 && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
  }
}

}  // namespace

HttpListener::HttpListener(HttpHandler handler)
    : handler_(std::move(handler)), net_(std::make_unique<Net>()) {
  if (!net_->wake.is_valid()) throw std::system_error(errno, std::system_category(), "eventfd");
}

HttpListener::~HttpListener() = default;

cppdiag::Status HttpListener::Bind(const std::string& host, int port) {
  auto fail = [&](const std::string& why) {
    return cppdiag::Error::Invalid("cannot listen on " + host + ":" + std::to_string(port) + " (" +
                                   why + ")");
  };
  boost::system::error_code ec;
  net::ip::tcp::endpoint endpoint;
  if (auto address = net::ip::make_address(host, ec); !ec) {
    endpoint = {address, static_cast<unsigned short>(port)};
  } else {
    // Only names go through getaddrinfo (which, in leakapp-static, has just
    // the image's /etc/hosts to go by).
    net::ip::tcp::resolver resolver(net_->ioc);
    auto results =
        resolver.resolve(host, std::to_string(port), net::ip::resolver_base::passive, ec);
    if (ec || results.empty()) return fail("not an address of this host");
    endpoint = results.begin()->endpoint();
  }
  // Each step leaves `ec` set on failure; the rest are then skipped.
  auto& acceptor = net_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (!ec) acceptor.non_blocking(true, ec);
  net::ip::tcp::endpoint local;
  if (!ec) local = acceptor.local_endpoint(ec);
  if (ec) {
    std::string why = ec.message();
    acceptor.close(ec);
    return fail(why);
  }
  port_ = local.port();
  bound_ = true;
  spdlog::info("Listening on http://{}:{}", host, port_.load());
  return cppdiag::OkStatus();
}

cppdiag::Status HttpListener::Serve() {
  {
    std::lock_guard lock(net_->mu);
    if (shutting_down_) return cppdiag::OkStatus();
    net_->accepting = true;
  }
  // A connection thread each, joined once it has ended (or at shutdown).
  struct Connection {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done = std::make_shared<std::atomic<bool>>(false);
  };
  std::list<Connection> connections;
  auto reap = [&connections] {
    connections.remove_if([](Connection& c) {
      if (!*c.done) return false;
      c.thread.join();
      return true;
    });
  };

  const int listen_fd = net_->acceptor.native_handle();
  cppdiag::Status status = cppdiag::OkStatus();
  while (!shutting_down_) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {net_->wake.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      status = cppdiag::Error::FromErrno("poll", "HTTP accept loop");
      break;
    }
    if (fds[1].revents != 0) break;
    cppdiag::ScopedFd fd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd.is_valid()) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: the connection stays queued; retry soon.
        spdlog::warn("accept: {}", std::error_code(errno, std::system_category()).message());
        pollfd wake = {net_->wake.get(), POLLIN, 0};
        ::poll(&wake, 1, 100);
      }
      continue;  // EAGAIN, ECONNABORTED, EINTR...: the next one
    }
    reap();
    if (connections.size() >= static_cast<size_t>(kMaxConnections)) {
      RejectBusy(fd.get());
      continue;
    }
    // No thread (EAGAIN) or no memory (the heap hard limit a leak reached):
    // refuse this connection and keep serving, rather than let the
    // exception end Serve().
    try {
      Connection& c = connections.emplace_back();
      ++open_connections_;
      try {
        // The raw fd, so that `fd` still owns it if the thread cannot start.
        c.thread = std::thread([this, done = c.done, raw = fd.get()] {
          ServeHttpConnection(cppdiag::ScopedFd(raw), net_->wake.get(), handler_, shutting_down_);
          --open_connections_;
          *done = true;
        });
      } catch (...) {
        --open_connections_;
        connections.pop_back();
        throw;
      }
      (void)fd.release();  // the thread owns it now
    } catch (const std::exception& e) {
      spdlog::warn("no thread for a connection: {}", e.what());
      RejectBusy(fd.get());
    }
  }
  boost::system::error_code ec;
  net_->acceptor.close(ec);
  {
    std::lock_guard lock(net_->mu);
    net_->accepting = false;
  }
  net_->accepting_changed.notify_all();
  // Connections see the wake eventfd and end at once, except for a reply
  // still being written (bounded by kIoTimeout).
  for (auto& c : connections) c.thread.join();
  return status;
}

void HttpListener::Shutdown() {
  shutting_down_ = true;
  // Never read: the eventfd stays readable, so every poll() now returns.
  uint64_t one = 1;
  (void)!::write(net_->wake.get(), &one, sizeof one);
  std::unique_lock lock(net_->mu);
  net_->accepting_changed.wait(lock, [this] { return !net_->accepting; });
}

}  // namespace leakapp
