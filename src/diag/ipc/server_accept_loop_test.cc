// The diagnostic server's accept loop under descriptor exhaustion and with
// a listener closed underneath it: it answers from its reserve descriptor,
// backs off instead of spinning, and serves on.
#include "diag/ipc/server.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/io.h"
#include "diag/ipc/client.h"
#include "diag/ipc/testing/descriptors.h"
#include "diag/ipc/testing/raw_client.h"
#include "diag/ipc/testing/server_fixture.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"

namespace cppdiag::ipc {
namespace {

using ::cppdiag::testing::IsOk;
using ::cppdiag::testing::ScopedTempDir;
using testing::ConnectTo;
using testing::CpuShareWhileWaiting;
using testing::FillDescriptorsBelow64;
using testing::Frame;
using testing::ListenerFd;
using testing::OkHandlers;
using testing::RawReply;
using testing::ReadReply;
using testing::ScopedFdLimit;
using testing::ServerTest;
using testing::ToString;

TEST_F(ServerTest, OutOfDescriptorsARequestIsAnsweredFromTheReserveDescriptor) {
  std::vector<ScopedFd> held = FillDescriptorsBelow64();
  ScopedFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int next = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
  ::close(next);
  ScopedFdLimit limit(static_cast<rlim_t>(next));  // accept(2) now fails with EMFILE
  ASSERT_TRUE(limit.ok());
  ASSERT_TRUE(ConnectTo(client.get(), server_->socket_path()));
  RawReply r = ReadReply(client.get(), 3000);
  limit.Restore();
  ASSERT_TRUE(r.failure.empty()) << r.failure;
  EXPECT_EQ(r.body.value("code", ""), "EMFILE") << ToString(r);
  EXPECT_THAT(Call(endpoint(), Command::kProcessInfo, nlohmann::json::object()), IsOk());
}

TEST_F(ServerTest, OutOfDescriptorsTheAcceptLoopBacksOffInsteadOfSpinning) {
  ScopedFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ScopedFdLimit limit(3);  // below every descriptor the server holds: no reserve helps
  ASSERT_TRUE(limit.ok());
  ASSERT_TRUE(ConnectTo(client.get(), server_->socket_path()));
  std::string request = Frame(Command::kProcessInfo, R"({"echo":"late"})");
  ASSERT_EQ(SendAllRaw(client.get(), request.data(), request.size()), 0);
  bool answered = true;
  double share = CpuShareWhileWaiting(client.get(), 500, &answered);
  limit.Restore();
  EXPECT_FALSE(answered);
  EXPECT_LT(share, 0.1) << "CPU share of the process while accept(2) fails with EMFILE";
  // Descriptors again: the pending request is served.
  RawReply r = ReadReply(client.get());
  EXPECT_EQ(r.status, static_cast<uint16_t>(ReplyStatus::kOk)) << ToString(r);
  EXPECT_EQ(r.body.value("echo", ""), "late") << ToString(r);
}

TEST(ServerAcceptLoop, AListenerClosedUnderneathIsDroppedAndTheOtherServesOn) {
  ScopedTempDir tmp("cppdiag-ipc");
  const std::string& dir = tmp.path();
  DiagnosticServer::Handlers h = OkHandlers();
  // A free descriptor below the server's, so that the connection it accepts
  // next does not take the number of the listener closed below.
  ScopedFd gap(::fcntl(0, F_DUPFD_CLOEXEC, 0));
  auto s = DiagnosticServer::Start({.tmpdir = dir}, std::move(h));
  ASSERT_THAT(s, IsOk());
  gap.reset();
  int listener = ListenerFd((*s)->socket_path());
  ASSERT_GE(listener, 0);
  ::close(listener);  // as a program that closes every descriptor it did not open would
  // One request over the abstract socket wakes the loop; it then polls the closed one.
  Endpoint abstract{"", (*s)->socket_name()};
  EXPECT_THAT(Call(abstract, Command::kProcessInfo, nlohmann::json::object()), IsOk());
  double share = CpuShareWhileWaiting(-1, 500);
  EXPECT_LT(share, 0.1) << "CPU share of the process with a listener closed underneath";
  EXPECT_THAT(Call(abstract, Command::kProcessInfo, nlohmann::json::object()), IsOk());
  s->reset();
}

}  // namespace
}  // namespace cppdiag::ipc
