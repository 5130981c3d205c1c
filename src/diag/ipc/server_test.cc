#include "diag/ipc/server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "common/io.h"
#include "diag/ipc/client.h"

namespace cppdiag::ipc {
namespace {

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cppdiag-ipc-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    DiagnosticServer::Handlers h;
    h[Command::kProcessInfo] = [](const nlohmann::json& req, const PeerInfo& peer) {
      return Result<nlohmann::json>(nlohmann::json{
          {"pid", ::getpid()}, {"peer_uid", peer.uid}, {"echo", req.value("echo", "")}});
    };
    h[Command::kDump] = [](const nlohmann::json& req,
                           const PeerInfo& peer) -> Result<nlohmann::json> {
      if (req.at("type").get<std::string>() == "bad") return Error::Invalid("no such type");
      int frames = 0;
      if (peer.progress) {  // only when the request asked for it
        for (uint64_t done = 0; done <= 300; done += 100, ++frames) {
          peer.progress({{"bytes_written", done}, {"bytes_total", 300}});
        }
      }
      return nlohmann::json{{"ok", true}, {"frames", frames}};
    };
    auto s = DiagnosticServer::Start(
        {.tmpdir = dir_, .read_timeout = std::chrono::milliseconds(300)}, std::move(h));
    ASSERT_TRUE(s.ok()) << s.error().message();
    server_ = std::move(*s);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  Endpoint endpoint() const { return {server_->socket_path(), ""}; }

  std::string dir_;
  std::unique_ptr<DiagnosticServer> server_;
};

TEST_F(ServerTest, SocketIsNamedByPidAndStartTimeWithMode0600) {
  EXPECT_EQ(server_->socket_name().rfind("cppdiag-" + std::to_string(getpid()) + "-", 0), 0u);
  struct stat st {};
  ASSERT_EQ(::stat(server_->socket_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ServerTest, AnswersOverTheFileAndTheAbstractSocket) {
  auto r = Call(endpoint(), Command::kProcessInfo, {{"echo", "hi"}});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)["pid"], getpid());
  EXPECT_EQ((*r)["echo"], "hi");
  auto a = Call({"", server_->socket_name()}, Command::kProcessInfo, nlohmann::json::object());
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ((*a)["pid"], getpid());
}

TEST_F(ServerTest, ProgressFramesComeBeforeTheReplyWhenAskedFor) {
  std::vector<std::pair<uint64_t, uint64_t>> seen;
  auto r = Call(endpoint(), Command::kDump, {{"type", "full"}}, std::chrono::seconds(5),
                [&](const nlohmann::json& p) {
                  seen.emplace_back(p.at("bytes_written").get<uint64_t>(),
                                    p.at("bytes_total").get<uint64_t>());
                });
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)["frames"], 4);
  std::vector<std::pair<uint64_t, uint64_t>> expected = {
      {0, 300}, {100, 300}, {200, 300}, {300, 300}};
  EXPECT_EQ(seen, expected);
}

TEST_F(ServerTest, NoProgressFramesForARequestThatDidNotAsk) {
  // An older client: one frame back, the reply.
  auto r = Call(endpoint(), Command::kDump, {{"type", "full"}});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)["frames"], 0);
  auto f = Call(endpoint(), Command::kDump, {{"type", "full"}, {"progress", "yes"}});
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ((*f)["frames"], 0);  // only a JSON true asks
}

TEST_F(ServerTest, TheClientChecksWhoHoldsTheSocket) {
  Endpoint squatted{"", server_->socket_name(), /*expected_pid=*/getppid()};
  auto r = Call(squatted, Command::kProcessInfo, nlohmann::json::object());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("is held by pid " + std::to_string(getpid())),
            std::string::npos)
      << r.error().message();
  Endpoint genuine{server_->socket_path(), "", getpid()};
  EXPECT_TRUE(Call(genuine, Command::kProcessInfo, nlohmann::json::object()).ok());
}

TEST_F(ServerTest, HandlerErrorsAndUnknownCommandsGetErrorReplies) {
  auto bad = Call(endpoint(), Command::kDump, {{"type", "bad"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "no such type");
  auto wrong_field = Call(endpoint(), Command::kDump, {{"type", 5}});
  ASSERT_FALSE(wrong_field.ok());
  EXPECT_NE(wrong_field.error().message().find("bad request"), std::string::npos);
  auto unknown = Call(endpoint(), Command::kTrace, nlohmann::json::object());
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message().find("unsupported command 5"), std::string::npos);
}

// Writes raw bytes to the socket and returns the reply's error text.
std::string SendRaw(const std::string& path, const std::string& bytes) {
  ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return "connect";
  (void)SendAllRaw(fd.get(), bytes.data(), bytes.size());
  ::shutdown(fd.get(), SHUT_WR);
  char header[kHeaderSize];
  if (ReadExactlyRaw(fd.get(), header, sizeof header) != 0) return "no reply";
  auto h = DecodeHeader({header, sizeof header}, kMaxReplyPayload);
  if (!h) return "bad reply header";
  std::string payload(h->payload_size, '\0');
  if (ReadExactlyRaw(fd.get(), payload.data(), payload.size()) != 0) return "short reply";
  return nlohmann::json::parse(payload).value("error", "");
}

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
  EXPECT_TRUE(Call(endpoint(), Command::kProcessInfo, nlohmann::json::object()).ok());
}

TEST_F(ServerTest, ASlowClientTimesOutWithoutBlockingOthers) {
  ScopedFd slow(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, server_->socket_path().c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::connect(slow.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_TRUE(Call(endpoint(), Command::kProcessInfo, nlohmann::json::object()).ok());
  char header[kHeaderSize];
  ASSERT_EQ(ReadExactlyRaw(slow.get(), header, sizeof header), 0);  // the timeout's error reply
  EXPECT_EQ(DecodeHeader({header, sizeof header}, kMaxReplyPayload)->code,
            static_cast<uint16_t>(ReplyStatus::kError));
}

TEST_F(ServerTest, TwentyClientsAtOnce) {
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 20; ++i) {
    clients.emplace_back([&, i] {
      auto r = Call(endpoint(), Command::kProcessInfo, {{"echo", std::to_string(i)}});
      if (r && (*r)["echo"] == std::to_string(i)) ++ok;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 20);
}

TEST_F(ServerTest, RefusesAPeerOfAnotherUid) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become another uid";
  ::chmod(dir_.c_str(), 0755);
  ::chmod(server_->socket_path().c_str(), 0666);  // let the file through: SO_PEERCRED must refuse
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t child = ::fork();
  if (child == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) _exit(3);
    auto r = Call(endpoint(), Command::kProcessInfo, nlohmann::json::object());
    std::string msg = r.ok() ? "ACCEPTED" : r.error().message();
    (void)!::write(pipefd[1], msg.data(), msg.size());
    _exit(0);
  }
  ::close(pipefd[1]);
  char buf[512] = {};
  (void)!::read(pipefd[0], buf, sizeof buf - 1);
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_NE(std::string(buf).find("peer uid 65534 may not use"), std::string::npos) << buf;
  EXPECT_GE(server_->requests_refused(), 1u);
}

}  // namespace
}  // namespace cppdiag::ipc
