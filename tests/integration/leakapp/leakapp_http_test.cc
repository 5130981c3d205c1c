// leakapp's HTTP server as clients load it: many concurrent keep-alive
// clients, a pipelining one, hundreds of idle connections held open while a
// probe comes in. Counts responses per connection; no timing is asserted
// (req/s and latency are bench/load's).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "common/io.h"
#include "common/scoped_fd.h"
#include "integration/leakapp/leakapp_process.h"

namespace cppdiag::testing {
namespace {

// One client connection that reads replies by their Content-Length, so that
// it can keep the connection for the next request.
class KeepAliveClient {
 public:
  explicit KeepAliveClient(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    timeval timeout{10, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    connected_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }

  bool connected() const { return connected_; }

  bool Send(const std::string& data) { return WriteAll(fd_.get(), data.data(), data.size()).ok(); }

  // The status code of the next complete reply, or 0 if the connection
  // ended (or 10 s passed) first.
  int ReadReply() {
    for (;;) {
      size_t end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        size_t at = buffer_.find("Content-Length: ");
        if (at != std::string::npos && at < end) length = std::stoul(buffer_.substr(at + 16));
        if (buffer_.size() >= end + 4 + length) {
          int status = buffer_.starts_with("HTTP/1.1 ") ? std::stoi(buffer_.substr(9, 3)) : -1;
          buffer_.erase(0, end + 4 + length);
          return status;
        }
      }
      char buf[16384];
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n <= 0) return 0;
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  ScopedFd fd_;
  bool connected_ = false;
  std::string buffer_;
};

std::string Get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: t\r\n\r\n";
}

class LeakappHttpTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(app_.WaitUntilReady()); }
  LeakappProcess app_;
};

TEST_F(LeakappHttpTest, SixtyFourConcurrentKeepAliveClientsAreAllAnswered200) {
  constexpr int kClients = 64;
  constexpr int kRequestsEach = 50;
  std::vector<int> ok(kClients, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      KeepAliveClient client(app_.port());
      if (!client.connected()) return;
      for (int r = 0; r < kRequestsEach; ++r) {
        if (!client.Send(Get(r % 2 ? "/status" : "/healthz"))) return;
        if (client.ReadReply() != 200) return;
        ++ok[i];
      }
    });
  }
  for (auto& t : threads) t.join();
  // Every request of every client answered 200 on the client's one
  // connection: none refused, none closed early.
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(ok[i], kRequestsEach) << "client " << i;
}

TEST_F(LeakappHttpTest, APipeliningClientGetsEveryReplyOnOneConnection) {
  constexpr int kRequests = 500;
  KeepAliveClient client(app_.port());
  ASSERT_TRUE(client.connected());
  std::string batch;
  for (int r = 0; r < kRequests; ++r) batch += Get(r % 5 == 4 ? "/status" : "/healthz");
  ASSERT_TRUE(client.Send(batch));
  int answered = 0;
  for (int r = 0; r < kRequests && client.ReadReply() == 200; ++r) ++answered;
  EXPECT_EQ(answered, kRequests);
  // And the connection is still open for more.
  ASSERT_TRUE(client.Send(Get("/readyz")));
  EXPECT_EQ(client.ReadReply(), 200);
}

TEST_F(LeakappHttpTest, HundredsOfIdleKeepAliveConnectionsDoNotKeepAProbeOut) {
  constexpr int kIdle = 300;
  std::vector<KeepAliveClient> idle;
  idle.reserve(kIdle);
  for (int i = 0; i < kIdle; ++i) {
    idle.emplace_back(app_.port());
    ASSERT_TRUE(idle.back().connected()) << i;
    // Answered: the server holds the connection (a thread for it), now idle.
    ASSERT_TRUE(idle.back().Send(Get("/healthz")));
    ASSERT_EQ(idle.back().ReadReply(), 200) << i;
  }
  for (const char* probe : {"/healthz", "/readyz"}) {
    auto res = app_.Get(probe);
    ASSERT_TRUE(res) << probe << ": " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200) << probe;
  }
  // The idle ones are still served too.
  for (int i = 0; i < kIdle; i += 50) {
    ASSERT_TRUE(idle[i].Send(Get("/healthz")));
    EXPECT_EQ(idle[i].ReadReply(), 200) << i;
  }
}

}  // namespace
}  // namespace cppdiag::testing

namespace cppdiag::testing {
namespace {

TEST_F(LeakappHttpTest, ThePageAndItsAssetsAreServedFromTheBinary) {
  auto page = app_.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html");
  EXPECT_NE(page->body.find("<script src=\"page/uPlot.iife.min.js\">"), std::string::npos);
  // Every asset the page names is there, and none is fetched from elsewhere.
  EXPECT_EQ(page->body.find("http"), std::string::npos) << "an absolute URL in the page";
  for (const char* asset :
       {"/page/app.js", "/page/style.css", "/page/uPlot.iife.min.js", "/page/uPlot.min.css"}) {
    auto res = app_.Get(asset);
    ASSERT_TRUE(res) << asset;
    EXPECT_EQ(res->status, 200) << asset;
    EXPECT_GT(res->body.size(), 1000u) << asset;
  }
  EXPECT_NE(app_.Get("/page/uPlot.iife.min.js")->body.find("uPlot"), std::string::npos);

  nlohmann::json versions = app_.GetJson("/page/versions.json");
  EXPECT_TRUE(versions["leakapp"].is_string()) << versions.dump();
  EXPECT_TRUE(versions["uPlot"].is_string()) << versions.dump();
}

TEST_F(LeakappHttpTest, LogsGivesTheLastLinesOfTheLog) {
  nlohmann::json logs = app_.GetJson("/logs");
  ASSERT_TRUE(logs["lines"].is_array()) << logs.dump();
  bool listening = false;
  for (const auto& line : logs["lines"]) {
    listening =
        listening || line.get<std::string>().find("Listening on http://") != std::string::npos;
    EXPECT_FALSE(line.get<std::string>().ends_with("\n")) << line;
  }
  EXPECT_TRUE(listening) << logs.dump();
  EXPECT_EQ(app_.GetJson("/logs?lines=1")["lines"].size(), 1u);
  auto bad = app_.Get("/logs?lines=0");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

}  // namespace
}  // namespace cppdiag::testing
