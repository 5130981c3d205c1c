// libFuzzer target: any bytes a client sends to leakapp's HTTP server. The
// real connection code (leakapp::ServeHttpConnection: Beast's parser, the
// header and body limits, keep-alive, HEAD, the lingering close), the real
// target splitting and decoding (Boost.URL) and the real parameter parsers
// answer them on a socket pair; the input is every request the client sends
// on one connection, then the client's end of writing. Each input must end
// (no hang: the connection sees end-of-stream), and every byte that comes
// back must be HTTP/1.x replies, never a crash.
//
//   cmake --preset fuzz && cmake --build --preset fuzz --target http_fuzzer
//   build/fuzz/tests/fuzz/http_fuzzer -max_total_time=600 tests/fuzz/http_corpus
//
// The routes are leakapp's parameter parsers, not its endpoints: a fuzzer
// that could start a leak or a crash would measure the leak, not the parser.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>

#include "common/scoped_fd.h"
#include "leakapp/http_connection.h"
#include "leakapp/http_router.h"
#include "leakapp/request_params.h"

namespace {

using leakapp::HttpRequest;
using leakapp::HttpResponse;

template <class T>
void ReplyParsed(const std::variant<T, leakapp::ParamError>& parsed, HttpResponse& res) {
  if (const auto* error = std::get_if<leakapp::ParamError>(&parsed)) {
    leakapp::ReplyJson(res, 400, {{"error", error->message}, {"parameter", error->parameter}});
  } else {
    leakapp::ReplyJson(res, 200, {{"ok", true}});
  }
}

const leakapp::HttpRouter& Router() {
  static const leakapp::HttpRouter* router = [] {
    auto* r = new leakapp::HttpRouter;
    r->Add("GET", "/triggerMemoryLeak", [](const HttpRequest& req, HttpResponse& res) {
      ReplyParsed(leakapp::ParseLeakParams(req.params), res);
    });
    r->Add("POST", "/triggerMemoryLeak", [](const HttpRequest& req, HttpResponse& res) {
      ReplyParsed(leakapp::ParseLeakParams(req.params), res);
    });
    r->Add("GET", "/crash", [](const HttpRequest& req, HttpResponse& res) {
      ReplyParsed(leakapp::ParseCrashParams(req.params), res);
    });
    r->Add("GET", "/logs", [](const HttpRequest& req, HttpResponse& res) {
      ReplyParsed(leakapp::ParseLogLinesParam(req.params, 1000), res);
    });
    r->Add("GET", "/echo", [](const HttpRequest& req, HttpResponse& res) {
      res.set_content(req.path + "\n" + req.target, "text/plain");
    });
    r->Add("GET", "/throws",
           [](const HttpRequest&, HttpResponse&) { throw std::runtime_error("x"); });
    return r;
  }();
  return *router;
}

// True if what came back is nothing (the client's bytes held no complete
// request) or starts with a status line "HTTP/1.x NNN ".
bool StartsAsHttp(const std::string& out) {
  if (out.empty()) return true;
  return out.size() >= 13 && out.rfind("HTTP/1.", 0) == 0 && out[8] == ' ' &&
         std::isdigit(static_cast<unsigned char>(out[9])) != 0 &&
         std::isdigit(static_cast<unsigned char>(out[10])) != 0 &&
         std::isdigit(static_cast<unsigned char>(out[11])) != 0 && out[12] == ' ';
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  cppdiag::ScopedFd client(sv[1]);
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC) != 0) std::abort();  // never written: no shutdown
  cppdiag::ScopedFd wake_read(wake[0]), wake_write(wake[1]);

  // The client: sends the input, ends its writing, and reads every reply
  // until the server closes.
  std::string replies;
  std::thread peer([&] {
    int flags = ::fcntl(client.get(), F_GETFL);
    ::fcntl(client.get(), F_SETFL, flags & ~O_NONBLOCK);
    size_t sent = 0;
    while (sent < size) {
      ssize_t n = ::send(client.get(), data + sent, size - sent, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server closed early (a 400, then a close)
      sent += static_cast<size_t>(n);
    }
    ::shutdown(client.get(), SHUT_WR);
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(client.get(), buf, sizeof buf, 0);
      if (n <= 0) break;
      replies.append(buf, static_cast<size_t>(n));
    }
  });

  leakapp::ConnectionSocket socket{cppdiag::ScopedFd(sv[0])};
  std::atomic<bool> shutting_down{false};
  leakapp::ServeHttpConnection(
      socket, wake_read.get(),
      [](const HttpRequest& req, HttpResponse& res) { Router().Dispatch(req, res); },
      shutting_down);
  peer.join();

  if (!StartsAsHttp(replies)) {
    std::fprintf(stderr, "not an HTTP reply: %.80s\n", replies.c_str());
    std::abort();
  }
  return 0;
}
