// The diagnostic server's deadlines: a client that sends nothing, a request
// trickling in, a reply read slowly; none holds the server up. The slow
// peers are this test's own pacing (what they simulate), not waits on it.
#include "diag/ipc/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "common/io.h"
#include "diag/ipc/client.h"
#include "diag/ipc/testing/raw_client.h"
#include "diag/ipc/testing/server_fixture.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"

namespace cppdiag::ipc {
namespace {

using ::cppdiag::testing::IsOk;
using ::cppdiag::testing::ScopedTempDir;
using testing::ConnectTo;
using testing::Frame;
using testing::OkHandlers;
using testing::RawReply;
using testing::ReadReply;
using testing::ServerTest;
using testing::ToString;

TEST_F(ServerTest, ASlowClientTimesOutWithoutBlockingOthers) {
  ScopedFd slow(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, server_->socket_path().c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::connect(slow.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_THAT(Call(endpoint(), Command::kProcessInfo, nlohmann::json::object()), IsOk());
  char header[kHeaderSize];
  ASSERT_EQ(ReadExactlyRaw(slow.get(), header, sizeof header), 0);  // the timeout's error reply
  EXPECT_EQ(DecodeHeader({header, sizeof header}, kMaxReplyPayload)->code,
            static_cast<uint16_t>(ReplyStatus::kError));
}

TEST(ServerDeadlines, ARequestTricklingInIsCutOffAtTheRequestDeadline) {
  ScopedTempDir tmp("cppdiag-ipc");
  const std::string& dir = tmp.path();
  DiagnosticServer::Handlers h = OkHandlers();
  auto s = DiagnosticServer::Start({.tmpdir = dir, .read_timeout = std::chrono::seconds(1)},
                                   std::move(h));
  ASSERT_THAT(s, IsOk());
  ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(ConnectTo(fd.get(), (*s)->socket_path()));
  // One byte every 300 ms, until the server answers: with a 1 s deadline for
  // the whole request it takes about 4, never the whole 18-byte request.
  std::string request = Frame(Command::kProcessInfo, "{}");
  size_t sent = 0;
  bool answered = false;
  while (sent < request.size() && !answered) {
    if (SendAllRaw(fd.get(), &request[sent], 1) != 0) break;
    ++sent;
    pollfd p{fd.get(), POLLIN, 0};
    answered = ::poll(&p, 1, 300) == 1;
  }
  RawReply r = ReadReply(fd.get());
  EXPECT_LT(sent, 10u) << "bytes the server took before the deadline";
  EXPECT_EQ(r.body.value("code", ""), "ETIMEDOUT") << ToString(r);
  s->reset();
}

TEST(ServerDeadlines, AReplyReadSlowlyIsCutOffAtTheReplyDeadline) {
  ScopedTempDir tmp("cppdiag-ipc");
  const std::string& dir = tmp.path();
  DiagnosticServer::Handlers h;
  h[Command::kProcessInfo] = [](const nlohmann::json&, const PeerInfo&) {
    return Result<nlohmann::json>(nlohmann::json{{"big", std::string(16 << 20, 'x')}});
  };
  auto s = DiagnosticServer::Start({.tmpdir = dir,
                                    .read_timeout = std::chrono::seconds(1),
                                    .write_timeout = std::chrono::seconds(1)},
                                   std::move(h));
  ASSERT_THAT(s, IsOk());
  ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(ConnectTo(fd.get(), (*s)->socket_path()));
  std::string request = Frame(Command::kProcessInfo, "{}");
  ASSERT_EQ(SendAllRaw(fd.get(), request.data(), request.size()), 0);
  // 64 KiB every 300 ms: each read lets the server write a little more, but
  // the reply as a whole is late after 1 s, so the server stops and closes
  // long before the 16 MiB are through.
  std::vector<char> buf(64 << 10);
  size_t received = 0;
  for (;;) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) break;
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n <= 0) break;
    received += static_cast<size_t>(n);
    if (received > (4u << 20)) break;
    ::poll(nullptr, 0, 300);  // the slow reader's pace
  }
  EXPECT_LT(received, 4u << 20) << "reply bytes read before the server gave up";
  s->reset();
}

}  // namespace
}  // namespace cppdiag::ipc
