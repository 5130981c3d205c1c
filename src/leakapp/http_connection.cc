#include "leakapp/http_connection.h"

#include <sys/socket.h>

#include <spdlog/spdlog.h>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "leakapp/polled_socket.h"
#include "leakapp/query_string.h"

namespace leakapp {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

constexpr std::chrono::seconds kLingerTimeout{1};
constexpr size_t kMaxLingerBytes = 1 << 20;

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

// Lingering close: closing with unread input would send a reset that can
// destroy the reply before the client reads it (say a 413 sent before the
// body). So: say we are done, then read and drop what still comes, until
// the client closes, 1 s or 1 MiB (or at once on shutdown).
void LingeringClose(PolledSocket& stream) {
  ::shutdown(stream.fd(), SHUT_WR);
  stream.set_deadline(std::chrono::steady_clock::now() + kLingerTimeout);
  char scratch[4096];
  beast::error_code ec;
  for (size_t drained = 0; !ec && drained < kMaxLingerBytes;) {
    drained += stream.read_some(net::buffer(scratch), ec);
  }
}

}  // namespace

void ServeHttpConnection(ConnectionSocket& socket, int wake_fd, const HttpHandler& handler,
                         const std::atomic<bool>& shutting_down) {
  PolledSocket stream(socket, wake_fd);
  try {
    beast::flat_buffer buffer;
    for (;;) {
      stream.set_deadline(std::chrono::steady_clock::now() + kIoTimeout);
      // Nothing of the next request read yet: idle (PolledSocket clears it
      // when bytes arrive).
      socket.SetIdle(buffer.size() == 0);
      http::request_parser<http::string_body> parser;
      parser.header_limit(kMaxHeaderBytes);
      parser.body_limit(kMaxBodyBytes);
      beast::error_code ec;
      http::read(stream, buffer, parser, ec);

      http::response<http::string_body> out;
      HttpResponse res;
      bool head = false;
      bool keep_alive = false;
      if (ec) {
        auto failure = ReadFailure(ec);
        if (!failure) break;
        ReplyJson(res, static_cast<int>(failure->first), {{"error", failure->second}});
        spdlog::info("{} -> {}", failure->second, res.status);
      } else {
        const auto& in = parser.get();
        HttpRequest req;
        req.method = std::string(in.method_string());
        req.target = std::string(in.target());
        auto [path, params] = SplitRequestTarget(in.target());
        req.path = std::move(path);
        req.params = std::move(params);
        handler(req, res);
        head = req.method == "HEAD";
        keep_alive = in.keep_alive() && !shutting_down;
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
    socket.SetIdle(false);
    LingeringClose(stream);
  } catch (const std::exception& e) {
    spdlog::error("HTTP connection failed: {}", e.what());
  }
  socket.Close();
}

}  // namespace leakapp
