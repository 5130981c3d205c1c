#include "leakapp/http_listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

// What a client that gets no thread is told, without waiting on it (a
// client beyond the connection cap is not refused: it waits in the backlog).
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

HttpListener::HttpListener(HttpHandler handler, int max_connections)
    : handler_(std::move(handler)),
      max_connections_(max_connections),
      net_(std::make_unique<Net>()) {
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
  // A connection thread each, joined once it has ended (or at shutdown); an
  // ending thread bumps `ended`, which wakes this loop to reap it.
  struct Connection {
    explicit Connection(cppdiag::ScopedFd fd) : socket(std::move(fd)) {}
    ConnectionSocket socket;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::list<Connection> connections;
  cppdiag::ScopedFd ended(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!ended.is_valid()) return cppdiag::Error::FromErrno("eventfd", "HTTP accept loop");
  auto reap = [&connections] {
    connections.remove_if([](Connection& c) {
      if (!c.done) return false;
      c.thread.join();
      return true;
    });
  };
  // At the cap, with a client waiting in the backlog: close the connection
  // idle longest. False if none is idle.
  auto close_idlest = [&connections] {
    Connection* idlest = nullptr;
    ConnectionSocket::Clock::time_point oldest = ConnectionSocket::Clock::time_point::max();
    for (auto& c : connections) {
      auto since = c.socket.idle_since();
      if (since && *since < oldest) {
        oldest = *since;
        idlest = &c;
      }
    }
    return idlest != nullptr && idlest->socket.CloseIfIdle();
  };

  const int listen_fd = net_->acceptor.native_handle();
  const size_t cap = static_cast<size_t>(max_connections_);
  // Set while at the cap with a client waiting: the backlog is not watched
  // until a connection ends (or, if none was idle, for kCapRecheck).
  bool waiting_for_room = false;
  cppdiag::Status status = cppdiag::OkStatus();
  while (!shutting_down_) {
    pollfd fds[3] = {{net_->wake.get(), POLLIN, 0},
                     {ended.get(), POLLIN, 0},
                     {listen_fd, static_cast<short>(waiting_for_room ? 0 : POLLIN), 0}};
    int timeout_ms = waiting_for_room ? static_cast<int>(kCapRecheck.count()) : -1;
    int ready = ::poll(fds, 3, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      status = cppdiag::Error::FromErrno("poll", "HTTP accept loop");
      break;
    }
    if (fds[0].revents != 0) break;
    if (fds[1].revents != 0) {
      uint64_t count;
      (void)!::read(ended.get(), &count, sizeof count);
      reap();
      waiting_for_room = false;
    }
    if (ready == 0) waiting_for_room = false;  // look at the backlog (and the idle) again
    if (fds[2].revents == 0) continue;
    if (connections.size() >= cap) {
      // Queue, never refuse: the client waits in the backlog until a slot
      // frees; an idle keep-alive connection gives its slot up now.
      close_idlest();
      waiting_for_room = true;
      continue;
    }
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
    // Replies leave in one write each (polled_socket.h); without this, Nagle
    // would hold the next reply on a kept-alive connection until the
    // client's delayed ACK.
    int one = 1;
    (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // No thread (EAGAIN) or no memory (the heap hard limit a leak reached):
    // refuse this connection and keep serving, rather than let the
    // exception end Serve().
    try {
      Connection& c = connections.emplace_back(std::move(fd));
      ++open_connections_;
      try {
        c.thread = std::thread([this, &c, ended_fd = ended.get()] {
          ServeHttpConnection(c.socket, net_->wake.get(), handler_, shutting_down_);
          --open_connections_;
          c.done = true;
          uint64_t count = 1;
          (void)!::write(ended_fd, &count, sizeof count);
        });
      } catch (const std::exception& e) {
        --open_connections_;
        spdlog::warn("no thread for a connection: {}", e.what());
        RejectBusy(c.socket.fd());
        connections.pop_back();
      }
    } catch (const std::exception& e) {  // no memory for the list node
      spdlog::warn("no memory for a connection: {}", e.what());
      if (fd.is_valid()) RejectBusy(fd.get());
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
