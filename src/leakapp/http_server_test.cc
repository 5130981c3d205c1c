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

#include <cerrno>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/io.h"
#include "common/scoped_fd.h"
#include "leakapp/http_connection.h"
#include "support/poll.h"
#include "support/status_matchers.h"

namespace leakapp {
namespace {

using ::cppdiag::testing::IsOk;

using namespace std::chrono_literals;

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
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

// How a read to the end ended: the server closed (or reset) the
// connection, or 5 s passed without data.
enum class End { kClosed, kTimedOut };

// Everything until the server closes (or 5 s without data); `end` says which.
std::string ReadToEnd(const cppdiag::ScopedFd& fd, End* end = nullptr) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) {
      if (end != nullptr) {
        *end = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? End::kTimedOut : End::kClosed;
      }
      return out;
    }
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
    ASSERT_THAT(server_.Bind("127.0.0.1", 0), IsOk());  // the kernel picks the port
    port_ = server_.port();
    ASSERT_GT(port_, 0);
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
  ASSERT_THAT(server.Bind("127.0.0.1", 0), IsOk());
  int port = server.port();
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
  // The server has a thread on each (it reads the half request).
  ASSERT_TRUE(cppdiag::testing::PollUntil([&] { return server_.open_connections() == 2; }, 10s))
      << server_.open_connections();

  server_.Shutdown();
  // Prompt: Serve() returns well before the connections' own kIoTimeout could
  // have ended them (a deadline that holds on any machine, not a timing).
  auto served = std::async(std::launch::async, [this] { serving_.join(); });
  ASSERT_EQ(served.wait_for(kIoTimeout / 2), std::future_status::ready)
      << "Serve() waited for the connections' timeouts";
  EXPECT_TRUE(served_ok_);
  EXPECT_EQ(server_.open_connections(), 0);
  // Both were closed by the server: EOF, not the 5 s read timeout.
  End idle_end = End::kTimedOut, half_end = End::kTimedOut;
  EXPECT_EQ(ReadToEnd(idle, &idle_end), "");
  EXPECT_EQ(ReadToEnd(half, &half_end), "");
  EXPECT_EQ(idle_end, End::kClosed);
  EXPECT_EQ(half_end, End::kClosed);
  EXPECT_FALSE(Connect(port_).is_valid()) << "still accepting";
}

TEST(HttpServerShutdownTest, ShutdownBeforeServeMakesServeReturnAtOnce) {
  LeakEngine engine;
  auto server = std::make_unique<HttpServer>(engine, std::nullopt);
  ASSERT_THAT(server->Bind("127.0.0.1", 0), IsOk());
  // Queued by the kernel before Serve(): it must never be served.
  cppdiag::ScopedFd queued = Connect(server->port());
  ASSERT_TRUE(queued.is_valid());
  ASSERT_TRUE(Send(queued, Get("/healthz")));
  server->Shutdown();
  // At once: without accepting (a hang here fails the test by its timeout).
  EXPECT_THAT(server->Serve(), IsOk());
  EXPECT_EQ(server->open_connections(), 0);
  // Gone, its listener closed: the queued connection ends unanswered (and
  // the read does not wait out its 5 s).
  server.reset();
  End end = End::kTimedOut;
  EXPECT_EQ(ReadToEnd(queued, &end), "") << "served after Shutdown()";
  EXPECT_EQ(end, End::kClosed);
}

TEST(HttpServerShutdownTest, BindFailsWithAClearErrorWhenThePortIsTaken) {
  LeakEngine engine;
  HttpServer first(engine, std::nullopt);
  HttpServer second(engine, std::nullopt);
  ASSERT_THAT(first.Bind("127.0.0.1", 0), IsOk());
  const int port = first.port();
  ASSERT_GT(port, 0);
  auto bound = second.Bind("127.0.0.1", port);
  ASSERT_FALSE(bound.ok());
  EXPECT_NE(bound.error().message().find("cannot listen on 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << bound.error().message();
  EXPECT_FALSE(second.Bind("no-such-host.invalid", port).ok());
}

}  // namespace
}  // namespace leakapp
