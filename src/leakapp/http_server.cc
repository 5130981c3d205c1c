#include "leakapp/http_server.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>

#include "common/scoped_fd.h"
#include "leakapp/crash.h"
#include "leakapp/query_string.h"
#include "leakapp/request_params.h"
#include "leakapp/status_report.h"

namespace leakapp {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using Json = nlohmann::ordered_json;

struct HttpServer::Request {
  std::string method;
  std::string target;  // as sent
  std::string path;    // decoded
  QueryParams params;  // decoded
};

struct HttpServer::Response {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
  std::string allow;                  // the Allow header of a 405
  std::function<void()> after_write;  // runs once the reply has been sent

  void set_content(std::string content, const char* type) {
    body = std::move(content);
    content_type = type;
  }
};

struct HttpServer::Route {
  const char* method;
  const char* path;
  std::function<void(const Request&, Response&)> handler;
};

// The listening socket, and an eventfd that Shutdown() makes readable for
// good: every poll() of the accept loop and of the connections watches it.
struct HttpServer::Net {
  net::io_context ioc;
  net::ip::tcp::acceptor acceptor{ioc};
  cppdiag::ScopedFd wake{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  std::mutex mu;
  std::condition_variable accepting_changed;
  bool accepting = false;  // Serve()'s accept loop runs
};

namespace {

constexpr const char* kJson = "application/json";
constexpr size_t kMaxHeaderBytes = 8 * 1024;
constexpr size_t kMaxBodyBytes = 64 * 1024;
// A request (or the wait for the next one on a kept-alive connection) and a
// reply must each complete within this time.
constexpr std::chrono::seconds kIoTimeout{10};
constexpr std::chrono::seconds kLingerTimeout{1};
constexpr size_t kMaxLingerBytes = 1 << 20;

// Probes and scrapes are frequent: log them at debug level only.
bool IsQuiet(const std::string& path) {
  return path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/status";
}

// A connected socket as a Beast SyncReadStream/SyncWriteStream whose reads
// and writes wait in poll() with a deadline, and whose reads also end when
// the server's wake eventfd becomes readable (shutdown). The fd is
// non-blocking, so a stalled client can hold its thread no longer than the
// deadline.
class PolledSocket {
 public:
  PolledSocket(cppdiag::ScopedFd fd, int wake_fd) : fd_(std::move(fd)), wake_fd_(wake_fd) {}

  void set_deadline(std::chrono::steady_clock::time_point deadline) { deadline_ = deadline; }

  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& buffers, beast::error_code& ec) {
    net::mutable_buffer buffer = FirstNonEmpty<net::mutable_buffer>(buffers);
    if (buffer.size() == 0) return ClearError(ec, 0);
    for (;;) {
      ssize_t n = ::recv(fd_.get(), buffer.data(), buffer.size(), 0);
      if (n > 0) return ClearError(ec, n);
      if (n == 0) {
        ec = net::error::eof;
        return 0;
      }
      if (!Retry(POLLIN, /*watch_wake=*/true, ec)) return 0;
    }
  }

  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& buffers, beast::error_code& ec) {
    net::const_buffer buffer = FirstNonEmpty<net::const_buffer>(buffers);
    for (;;) {
      ssize_t n = ::send(fd_.get(), buffer.data(), buffer.size(), MSG_NOSIGNAL);
      if (n >= 0) return ClearError(ec, n);
      // A reply already being written is finished even during shutdown.
      if (!Retry(POLLOUT, /*watch_wake=*/false, ec)) return 0;
    }
  }

  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& buffers) {
    beast::error_code ec;
    size_t n = read_some(buffers, ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }

  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& buffers) {
    beast::error_code ec;
    size_t n = write_some(buffers, ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }

  int fd() const { return fd_.get(); }

 private:
  template <class Buffer, class Buffers>
  static Buffer FirstNonEmpty(const Buffers& buffers) {
    for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers);
         ++it) {
      Buffer b(*it);
      if (b.size() > 0) return b;
    }
    return Buffer();
  }

  static size_t ClearError(beast::error_code& ec, ssize_t n) {
    ec = {};
    return static_cast<size_t>(n);
  }

  // After a failed recv/send: false with `ec` set unless the error is EINTR
  // or EAGAIN and the socket becomes ready before the deadline or shutdown.
  bool Retry(short events, bool watch_wake, beast::error_code& ec) {
    if (errno == EINTR) return true;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      ec.assign(errno, beast::system_category());
      return false;
    }
    for (;;) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ -
                                                               std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ec = beast::error::timeout;
        return false;
      }
      pollfd fds[2] = {{fd_.get(), events, 0}, {wake_fd_, POLLIN, 0}};
      int ready = ::poll(fds, watch_wake ? 2 : 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) {
        ec.assign(errno, beast::system_category());
        return false;
      }
      if (watch_wake && fds[1].revents != 0) {
        ec = net::error::operation_aborted;
        return false;
      }
      if (fds[0].revents != 0) return true;  // ready, or an error recv/send reports
    }
  }

  cppdiag::ScopedFd fd_;
  int wake_fd_;
  std::chrono::steady_clock::time_point deadline_;
};

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

// The status and message for a request Beast could not read, or nullopt when
// the connection just ended (closed, reset, timed out, shut down).
std::optional<std::pair<http::status, std::string>> ReadFailure(const beast::error_code& ec) {
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == net::error::eof || ec == beast::error::timeout || ec == net::error::operation_aborted ||
      ec.category() == beast::system_category()) {
    return std::nullopt;
  }
  if (ec == http::error::header_limit) {
    return std::pair{http::status::request_header_fields_too_large,
                     "request header over " + std::to_string(kMaxHeaderBytes) + " bytes"};
  }
  if (ec == http::error::body_limit) {
    return std::pair{http::status::payload_too_large,
                     "request body over " + std::to_string(kMaxBodyBytes) + " bytes"};
  }
  return std::pair{http::status::bad_request, "bad request: " + ec.message()};
}

void Reply(HttpServer::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", kJson);
}

void ReplyBadParameter(HttpServer::Response& res, const ParamError& e) {
  Reply(res, 400, {{"error", e.message}, {"parameter", e.parameter}});
}

}  // namespace

HttpServer::HttpServer(LeakEngine& engine, std::optional<uint64_t> heap_hard_limit_bytes)
    : engine_(engine),
      heap_hard_limit_bytes_(heap_hard_limit_bytes),
      net_(std::make_unique<Net>()) {
  if (!net_->wake.is_valid()) throw std::system_error(errno, std::system_category(), "eventfd");
  AddRoutes();
}

HttpServer::~HttpServer() = default;

void HttpServer::AddRoutes() {
  routes_ = {
      {"GET", "/triggerMemoryLeak",
       [this](const Request& req, Response& res) {
         auto parsed = ParseLeakParams(req.params);
         if (auto* e = std::get_if<ParamError>(&parsed)) return ReplyBadParameter(res, *e);
         const auto& p = std::get<LeakParams>(parsed);
         if (!engine_.Start(p)) {
           return Reply(res, 409,
                        {{"error", "a leak is already running; stop it with /stopMemoryLeak first"},
                         {"leak", LeakJson(engine_.Snapshot())}});
         }
         Reply(res, 200,
               {{"status", "started"},
                {"pattern", LeakPatternName(p.pattern)},
                {"params",
                 {{"chunkKb", p.chunk_kb}, {"intervalMs", p.interval_ms}, {"maxMb", p.max_mb}}}});
       }},
      {"GET", "/stopMemoryLeak",
       [this](const Request&, Response& res) {
         bool was_running = engine_.Stop();
         LeakSnapshot s = engine_.Snapshot();
         Reply(res, 200,
               {{"status", LeakStateName(s.state)},
                {"wasRunning", was_running},
                {"leakedBytes", s.leaked_bytes}});
       }},
      {"GET", "/releaseMemory",
       [this](const Request&, Response& res) {
         uint64_t freed = engine_.Release();
         Json body = {{"status", "released"}, {"freedBytes", freed}};
         if (auto m = ReadProcessMetrics()) body["rssBytes"] = m->rss_bytes;
         Reply(res, 200, body);
       }},
      {"GET", "/status",
       [this](const Request&, Response& res) {
         auto m = ReadProcessMetrics();
         if (!m) return Reply(res, 500, {{"error", m.error().message()}});
         std::chrono::duration<double> uptime = std::chrono::steady_clock::now() - started_;
         Reply(res, 200,
               StatusJson(*m, engine_.Snapshot(), heap_hard_limit_bytes_, uptime.count()));
       }},
      {"GET", "/healthz",
       [](const Request&, Response& res) { res.set_content("ok\n", "text/plain"); }},
      {"GET", "/readyz",
       [this](const Request&, Response& res) {
         bool ready = ready_ && !shutting_down_;
         res.status = ready ? 200 : 503;
         res.set_content(ready ? "ready\n" : "shutting down\n", "text/plain");
       }},
      {"GET", "/metrics",
       [this](const Request&, Response& res) {
         auto m = ReadProcessMetrics();
         if (!m) return Reply(res, 500, {{"error", m.error().message()}});
         res.set_content(MetricsText(*m, engine_.Snapshot(), heap_hard_limit_bytes_),
                         kPrometheusContentType);
       }},
      {"POST", "/crash",
       [](const Request& req, Response& res) {
         auto parsed = ParseCrashParams(req.params);
         if (auto* e = std::get_if<ParamError>(&parsed)) return ReplyBadParameter(res, *e);
         CrashKind kind = std::get<CrashKind>(parsed);
         res.status = 202;
         res.set_content(Json{{"status", "crashing"}, {"kind", CrashKindName(kind)}}.dump() + "\n",
                         kJson);
         // Only once the reply has been written, so the client gets it before
         // the process dies.
         res.after_write = [kind] { CrashOnNewThread(kind); };
       }},
  };
}

void HttpServer::Dispatch(const Request& req, Response& res) const {
  try {
    for (const auto& route : routes_) {
      if (req.path != route.path) continue;
      bool head = req.method == "HEAD" && std::string_view(route.method) == "GET";
      if (req.method == route.method || head) return route.handler(req, res);
      res.allow = route.method;
      return Reply(res, 405, {{"error", req.method + " not allowed; use " + route.method}});
    }
    Reply(res, 404, {{"error", "no such endpoint: " + req.path}});
  } catch (const std::exception& e) {
    spdlog::error("{} {} failed: {}", req.method, req.path, e.what());
    res = Response{};
    Reply(res, 500, {{"error", e.what()}});
  }
}

void HttpServer::ServeConnection(int fd) const {
  PolledSocket stream(cppdiag::ScopedFd(fd), net_->wake.get());
  try {
    beast::flat_buffer buffer;
    for (;;) {
      stream.set_deadline(std::chrono::steady_clock::now() + kIoTimeout);
      http::request_parser<http::string_body> parser;
      parser.header_limit(kMaxHeaderBytes);
      parser.body_limit(kMaxBodyBytes);
      beast::error_code ec;
      http::read(stream, buffer, parser, ec);

      http::response<http::string_body> out;
      Response res;
      bool head = false;
      bool keep_alive = false;
      if (ec) {
        auto failure = ReadFailure(ec);
        if (!failure) break;
        Reply(res, static_cast<int>(failure->first), {{"error", failure->second}});
        spdlog::info("{} -> {}", failure->second, res.status);
      } else {
        const auto& in = parser.get();
        Request req;
        req.method = std::string(in.method_string());
        req.target = std::string(in.target());
        auto [path, params] = SplitRequestTarget(in.target());
        req.path = std::move(path);
        req.params = std::move(params);
        Dispatch(req, res);
        spdlog::log(IsQuiet(req.path) ? spdlog::level::debug : spdlog::level::info, "{} {} -> {}",
                    req.method, req.target, res.status);
        head = req.method == "HEAD";
        keep_alive = in.keep_alive() && !shutting_down_;
        out.version(in.version());
      }

      out.result(static_cast<unsigned>(res.status));
      out.set(http::field::content_type, res.content_type);
      if (!res.allow.empty()) out.set(http::field::allow, res.allow);
      out.body() = std::move(res.body);
      out.prepare_payload();
      out.keep_alive(keep_alive);
      stream.set_deadline(std::chrono::steady_clock::now() + kIoTimeout);
      http::response_serializer<http::string_body> serializer(out);
      if (head) {
        http::write_header(stream, serializer, ec);  // HEAD: Content-Length, no body
      } else {
        http::write(stream, serializer, ec);
      }
      if (!ec && res.after_write) res.after_write();
      if (ec || !keep_alive) break;
    }
    // Lingering close: closing with unread input would send a reset that can
    // destroy the reply before the client reads it (say a 413 sent before the
    // body). So: say we are done, then read and drop what still comes, until
    // the client closes, 1 s or 1 MiB (or at once on shutdown).
    ::shutdown(stream.fd(), SHUT_WR);
    stream.set_deadline(std::chrono::steady_clock::now() + kLingerTimeout);
    char scratch[4096];
    beast::error_code ec;
    for (size_t drained = 0; !ec && drained < kMaxLingerBytes;) {
      drained += stream.read_some(net::buffer(scratch), ec);
    }
  } catch (const std::exception& e) {
    spdlog::error("HTTP connection failed: {}", e.what());
  }
}

cppdiag::Status HttpServer::Bind(const std::string& host, int port) {
  auto fail = [&](const std::string& why) {
    return cppdiag::Error::Invalid("cannot listen on " + host + ":" + std::to_string(port) + " (" +
                                   why + ")");
  };
  beast::error_code ec;
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
  if (ec) {
    std::string why = ec.message();
    acceptor.close(ec);
    return fail(why);
  }
  ready_ = true;
  spdlog::info("Listening on http://{}:{}", host, port);
  return cppdiag::OkStatus();
}

cppdiag::Status HttpServer::Serve() {
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
        spdlog::warn("accept: {}", std::strerror(errno));
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
      try {
        c.thread = std::thread([this, done = c.done, raw = fd.get()] {
          ServeConnection(raw);
          *done = true;
        });
      } catch (...) {
        connections.pop_back();
        throw;
      }
      (void)fd.release();  // the thread owns it now
    } catch (const std::exception& e) {
      spdlog::warn("no thread for a connection: {}", e.what());
      RejectBusy(fd.get());
    }
  }
  beast::error_code ec;
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

void HttpServer::Shutdown() {
  shutting_down_ = true;
  // Never read: the eventfd stays readable, so every poll() now returns.
  uint64_t one = 1;
  (void)!::write(net_->wake.get(), &one, sizeof one);
  std::unique_lock lock(net_->mu);
  net_->accepting_changed.wait(lock, [this] { return !net_->accepting; });
}

}  // namespace leakapp
