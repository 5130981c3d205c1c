// The diagnostic server against hostile input and failing handlers: junk
// bytes, bad frames, deep JSON, handlers that throw, strings that are not
// UTF-8; each gets an error reply and the server goes on.
#include "diag/ipc/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <new>
#include <random>
#include <string>

#include "diag/ipc/client.h"
#include "diag/ipc/testing/raw_client.h"
#include "diag/ipc/testing/server_fixture.h"
#include "support/status_matchers.h"

namespace cppdiag::ipc {
namespace {

using ::cppdiag::testing::IsOk;
using ::cppdiag::testing::StatusIs;
using testing::ConnectTo;
using testing::Exchange;
using testing::Frame;
using testing::OkHandlers;
using testing::RawReply;
using testing::ReadReply;
using testing::SendRaw;
using testing::ServerTest;
using testing::ToString;

TEST_F(ServerTest, RandomBytesGetAnErrorAndTheServerKeepsServing) {
  std::mt19937 rng(42);
  std::string junk(64 * 1024, '\0');
  for (char& c : junk) c = static_cast<char>(rng());
  EXPECT_NE(SendRaw(server_->socket_path(), junk).find("magic"), std::string::npos);
  EXPECT_NE(SendRaw(server_->socket_path(), EncodeFrame(1, "{not json")).find("JSON"),
            std::string::npos);
  std::string huge = EncodeFrame(1, "");
  huge[12] = huge[13] = huge[14] = '\x7f';
  EXPECT_NE(SendRaw(server_->socket_path(), huge).find("exceeds"), std::string::npos);
  EXPECT_NE(SendRaw(server_->socket_path(), EncodeFrame(1, "{}").substr(0, 17)).find("truncated"),
            std::string::npos);
  EXPECT_THAT(Call(endpoint(), Command::kProcessInfo, nlohmann::json::object()), IsOk());
}

// ---- Exceptions and hostile payloads

class ThrowingServerTest : public ServerTest {
 protected:
  void SetUp() override {
    DiagnosticServer::Handlers h = OkHandlers();
    h[Command::kCounters] = [](const nlohmann::json&, const PeerInfo&) -> Result<nlohmann::json> {
      throw std::bad_alloc();
    };
    h[Command::kTrace] = [](const nlohmann::json&, const PeerInfo&) -> Result<nlohmann::json> {
      throw 42;  // not a std::exception
    };
    h[Command::kDump] = [](const nlohmann::json& req, const PeerInfo&) -> Result<nlohmann::json> {
      if (req.value("busy", false)) return Error(EBUSY, "", "busy on purpose");
      // Bytes that are not UTF-8, as an argv or a mapping path may hold.
      return nlohmann::json{{"name", "app\xff\xfe"}};
    };
    StartServer(std::move(h));
  }
};

TEST_F(ThrowingServerTest, AHandlerThatRunsOutOfMemoryGetsAnEnomemReply) {
  RawReply r = Exchange(server_->socket_path(), Frame(Command::kCounters, "{}"));
  ASSERT_TRUE(r.failure.empty()) << r.failure;
  EXPECT_EQ(r.status, static_cast<uint16_t>(ReplyStatus::kError));
  EXPECT_EQ(r.body.value("code", ""), "ENOMEM") << ToString(r);
  EXPECT_THAT(Call(endpoint(), Command::kProcessInfo, nlohmann::json::object()), IsOk());
}

TEST_F(ThrowingServerTest, AHandlerThatThrowsANonStandardExceptionGetsAnErrorReply) {
  RawReply r = Exchange(server_->socket_path(), Frame(Command::kTrace, "{}"));
  ASSERT_TRUE(r.failure.empty()) << r.failure;
  EXPECT_EQ(r.status, static_cast<uint16_t>(ReplyStatus::kError)) << ToString(r);
  EXPECT_TRUE(r.body.contains("error")) << ToString(r);
  EXPECT_THAT(Call(endpoint(), Command::kProcessInfo, nlohmann::json::object()), IsOk());
}

TEST_F(ThrowingServerTest, DeeplyNestedJsonIsRefusedBeforeParsing) {
  RawReply r =
      Exchange(server_->socket_path(), Frame(Command::kProcessInfo, std::string(60000, '[')));
  ASSERT_TRUE(r.failure.empty()) << r.failure;
  EXPECT_NE(r.body.value("error", "").find("nesting too deep"), std::string::npos) << ToString(r);
  // Nesting within the cap, and brackets inside strings, are fine.
  EXPECT_THAT(Call(endpoint(), Command::kProcessInfo,
                   {{"a", {{"b", {1, 2, {3}}}}}, {"s", std::string(1000, '[')}}),
              IsOk());
}

TEST_F(ThrowingServerTest, ErrorCodesAreTheErrnoNames) {
  RawReply busy = Exchange(server_->socket_path(), Frame(Command::kDump, R"({"busy":true})"));
  EXPECT_EQ(busy.body.value("code", ""), "EBUSY") << ToString(busy);
  ScopedFd silent(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(ConnectTo(silent.get(), server_->socket_path()));
  RawReply timed_out = ReadReply(silent.get());
  EXPECT_EQ(timed_out.body.value("code", ""), "ETIMEDOUT") << ToString(timed_out);
  // The client hands the server's errno on.
  auto r = Call(endpoint(), Command::kDump, {{"busy", true}});
  EXPECT_THAT(r, StatusIs(EBUSY, "busy on purpose"));
}

TEST_F(ThrowingServerTest, StringsThatAreNotUtf8AreReplacedNotFatal) {
  auto r = Call(endpoint(), Command::kDump, nlohmann::json::object());
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ((*r)["name"], "app\xEF\xBF\xBD\xEF\xBF\xBD");
}

}  // namespace
}  // namespace cppdiag::ipc
