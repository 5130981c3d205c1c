// The transport rules of http_server.h (HEAD, decoding, limits, the
// connection cap, one write per reply, shutdown), against an in-process server on loopback with
// raw sockets: what the routes answer is covered by the integration tests.
#include "leakapp/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common/io.h"
#include "common/scoped_fd.h"

namespace leakapp {
namespace {

using namespace std::chrono_literals;

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// A port nobody listens on right now (the kernel's pick for port 0).
int FreePort() {
  cppdiag::ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr = Loopback(0);
  socklen_t len = sizeof addr;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return -1;
  }
  return ntohs(addr.sin_port);
}

// A connected client socket whose reads give up after 5 s.
cppdiag::ScopedFd Connect(int port) {
  cppdiag::ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval timeout{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr = Loopback(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return {};
  return fd;
}

bool Send(const cppdiag::ScopedFd& fd, const std::string& data) {
  return cppdiag::WriteAll(fd.get(), data.data(), data.size()).ok();
}

// Everything until the server closes (or 5 s without data).
std::string ReadToEnd(const cppdiag::ScopedFd& fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// Reads until `out` contains `count` occurrences of `marker`.
std::string ReadUntil(const cppdiag::ScopedFd& fd, const std::string& marker, int count = 1) {
  std::string out;
  char buf[4096];
  auto seen = [&] {
    int found = 0;
    for (size_t at = out.find(marker); at != std::string::npos; at = out.find(marker, at + 1)) {
      ++found;
    }
    return found >= count;
  };
  while (!seen()) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string Get(const std::string& target, const std::string& extra_headers = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: t\r\n" + extra_headers + "\r\n";
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = FreePort();
    ASSERT_GT(port_, 0);
    ASSERT_TRUE(server_.Bind("127.0.0.1", port_).ok());
    serving_ = std::thread([this] { served_ok_ = server_.Serve().ok(); });
  }

  void TearDown() override {
    server_.Shutdown();
    if (serving_.joinable()) serving_.join();
    EXPECT_TRUE(served_ok_);
  }

  // One request on its own connection, answered and closed.
  std::string Exchange(const std::string& request) {
    cppdiag::ScopedFd fd = Connect(port_);
    if (!fd.is_valid() || !Send(fd, request)) return "";
    return ReadToEnd(fd);
  }

  LeakEngine engine_;
  HttpServer server_{engine_, std::nullopt};
  int port_ = 0;
  std::thread serving_;
  bool served_ok_ = false;
};

TEST_F(HttpServerTest, HeadGetsTheHeadersOfGetWithoutTheBody) {
  std::string res = Exchange("HEAD /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(res.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << res;
  EXPECT_NE(res.find("Content-Length: 3\r\n"), std::string::npos) << res;
  EXPECT_TRUE(res.ends_with("\r\n\r\n")) << res;
}

TEST_F(HttpServerTest, PathAndQueryArePercentDecoded) {
  std::string res = Exchange(Get("/%68ealthz", "Connection: close\r\n"));
  EXPECT_EQ(res.rfind("HTTP/1.1 200 ", 0), 0u) << res;
  EXPECT_TRUE(res.ends_with("\r\n\r\nok\n")) << res;
  res = Exchange(Get("/triggerMemoryLeak?chunk%4Bb=a+b", "Connection: close\r\n"));
  EXPECT_EQ(res.rfind("HTTP/1.1 400 ", 0), 0u) << res;
  EXPECT_NE(res.find(R"({"error":"chunkKb: invalid integer 'a b'","parameter":"chunkKb"})"),
            std::string::npos)
      << res;
}

TEST_F(HttpServerTest, MalformedAndOversizedRequestsGetAJsonErrorAndAClose) {
  struct Case {
    std::string request;
    const char* status_line;
  };
  const Case cases[] = {
      {"GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
      {Get("/healthz", "X-Big: " + std::string(9000, 'a') + "\r\n"),
       "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
      {"POST /crash?kind=segv HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n" +
           std::string(70000, 'x'),
       "HTTP/1.1 413 Payload Too Large\r\n"},
  };
  for (const auto& c : cases) {
    std::string res = Exchange(c.request);
    EXPECT_EQ(res.rfind(c.status_line, 0), 0u) << res;
    EXPECT_NE(res.find("Content-Type: application/json\r\n"), std::string::npos) << res;
    EXPECT_NE(res.find("Connection: close\r\n"), std::string::npos) << res;
    EXPECT_NE(res.find(R"({"error":")"), std::string::npos) << res;
  }
}

TEST_F(HttpServerTest, KeepsTheConnectionAliveForPipelinedRequests) {
  cppdiag::ScopedFd fd = Connect(port_);
  ASSERT_TRUE(fd.is_valid());
  ASSERT_TRUE(Send(fd, Get("/healthz") + Get("/readyz") + Get("/healthz")));
  // In order: ok, ready, ok.
  std::string res = ReadUntil(fd, "\r\n\r\nok\n", 2);
  EXPECT_NE(res.find("\r\n\r\nready\nHTTP/1.1 200 OK\r\n"), std::string::npos) << res;
  EXPECT_TRUE(res.ends_with("\r\n\r\nok\n")) << res;
  // Still open for one more.
  ASSERT_TRUE(Send(fd, Get("/nope", "Connection: close\r\n")));
  res = ReadToEnd(fd);
  EXPECT_EQ(res.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << res;
}

TEST(HttpServerCapTest, AtTheCapTheConnectionIdleLongestMakesRoomForANewClient) {
  constexpr int kCap = 4;
  LeakEngine engine;
  HttpServer server(engine, std::nullopt, kCap);
  int port = FreePort();
  ASSERT_TRUE(server.Bind("127.0.0.1", port).ok());
  bool served_ok = false;
  std::thread serving([&] { served_ok = server.Serve().ok(); });

  std::vector<cppdiag::ScopedFd> held;
  for (int i = 0; i < kCap; ++i) {
    held.push_back(Connect(port));
    // Answered, so the server has given it a thread; it then stays idle.
    ASSERT_TRUE(Send(held.back(), Get("/healthz")));
    ASSERT_NE(ReadUntil(held.back(), "ok\n").find("200 OK"), std::string::npos) << i;
  }
  // Not refused: answered once an idle connection has given up its slot.
  cppdiag::ScopedFd extra = Connect(port);
  ASSERT_TRUE(Send(extra, Get("/healthz", "Connection: close\r\n")));
  std::string res = ReadToEnd(extra);
  EXPECT_EQ(res.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << res;

  // Exactly one held connection was closed by the server (end of stream);
  // the others still answer.
  std::vector<pollfd> fds;
  for (auto& fd : held) fds.push_back({fd.get(), POLLIN, 0});
  ASSERT_EQ(::poll(fds.data(), fds.size(), 5000), 1);
  for (size_t i = 0; i < held.size(); ++i) {
    if (fds[i].revents != 0) {
      EXPECT_EQ(ReadToEnd(held[i]), "") << i;
      continue;
    }
    ASSERT_TRUE(Send(held[i], Get("/healthz", "Connection: close\r\n")));
    res = ReadToEnd(held[i]);
    EXPECT_EQ(res.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << i << ": " << res;
  }
  server.Shutdown();
  serving.join();
  EXPECT_TRUE(served_ok);
}

TEST_F(HttpServerTest, EachReplyLeavesInOneSegment) {
  // One recv() of a reply that fits a segment gets all of it: the status
  // line, headers and body were sent together (with a write per piece and
  // TCP_NODELAY, the first recv would often end after the status line).
  cppdiag::ScopedFd fd = Connect(port_);
  ASSERT_TRUE(fd.is_valid());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(Send(fd, Get("/healthz")));
    char buf[4096];
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    std::string res(buf, static_cast<size_t>(n));
    EXPECT_EQ(res.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << res;
    EXPECT_TRUE(res.ends_with("\r\n\r\nok\n")) << i << ": " << res;
  }
}

TEST_F(HttpServerTest, ShutdownIsPromptWithIdleAndHalfSentConnectionsOpen) {
  cppdiag::ScopedFd idle = Connect(port_);
  ASSERT_TRUE(Send(idle, Get("/healthz")));
  ASSERT_NE(ReadUntil(idle, "ok\n").find("200 OK"), std::string::npos);
  cppdiag::ScopedFd half = Connect(port_);
  ASSERT_TRUE(Send(half, "GET /heal"));
  std::this_thread::sleep_for(50ms);  // let the server start reading it

  auto started = std::chrono::steady_clock::now();
  server_.Shutdown();
  serving_.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_TRUE(served_ok_);
  // Both were closed by the server: EOF, not the 5 s read timeout.
  started = std::chrono::steady_clock::now();
  EXPECT_EQ(ReadToEnd(idle), "");
  EXPECT_EQ(ReadToEnd(half), "");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_FALSE(Connect(port_).is_valid()) << "still accepting";
}

TEST(HttpServerShutdownTest, ShutdownBeforeServeMakesServeReturnAtOnce) {
  LeakEngine engine;
  HttpServer server(engine, std::nullopt);
  int port = FreePort();
  ASSERT_TRUE(server.Bind("127.0.0.1", port).ok());
  server.Shutdown();
  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(server.Serve().ok());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
}

TEST(HttpServerShutdownTest, BindFailsWithAClearErrorWhenThePortIsTaken) {
  LeakEngine engine;
  HttpServer first(engine, std::nullopt);
  HttpServer second(engine, std::nullopt);
  int port = FreePort();
  ASSERT_TRUE(first.Bind("127.0.0.1", port).ok());
  auto bound = second.Bind("127.0.0.1", port);
  ASSERT_FALSE(bound.ok());
  EXPECT_NE(bound.error().message().find("cannot listen on 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << bound.error().message();
  EXPECT_FALSE(second.Bind("no-such-host.invalid", port).ok());
}

}  // namespace
}  // namespace leakapp
