#include "diag/ipc/server.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "common/io.h"
#include "common/proc.h"
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

// ---- Helpers for the tests below: raw frames, descriptors, CPU time.

struct RawReply {
  std::string failure;  // empty when a whole frame came back
  uint16_t status = 0;
  nlohmann::json body;
};

// Connects `fd` (made by the caller, so that it may exist before a test
// lowers RLIMIT_NOFILE) to a socket file or, with a leading '@', an abstract name.
bool ConnectTo(int fd, const std::string& where) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t offset = where[0] == '@' ? 1 : 0;
  std::memcpy(addr.sun_path + offset, where.data() + offset, where.size() - offset);
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + where.size());
  return ::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0;
}

// Reads one reply frame from `fd`, waiting at most `timeout` for it to start.
RawReply ReadReply(int fd, int timeout_ms = 10000) {
  RawReply r;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) {
    r.failure = "no reply within " + std::to_string(timeout_ms) + " ms";
    return r;
  }
  char header[kHeaderSize];
  if (ReadExactlyRaw(fd, header, sizeof header) != 0) {
    r.failure = "no reply (connection closed)";
    return r;
  }
  auto h = DecodeHeader({header, sizeof header}, kMaxReplyPayload);
  if (!h) {
    r.failure = "bad reply header";
    return r;
  }
  std::string payload(h->payload_size, '\0');
  if (ReadExactlyRaw(fd, payload.data(), payload.size()) != 0) {
    r.failure = "short reply";
    return r;
  }
  r.status = h->code;
  r.body = nlohmann::json::parse(payload, nullptr, false);
  if (r.body.is_discarded()) r.failure = "reply is not JSON: " + payload;
  return r;
}

RawReply Exchange(const std::string& where, const std::string& bytes) {
  ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!ConnectTo(fd.get(), where)) return {"connect " + where + ": " + std::strerror(errno)};
  (void)SendAllRaw(fd.get(), bytes.data(), bytes.size());
  return ReadReply(fd.get());
}

std::string Frame(Command c, const std::string& payload) {
  return EncodeFrame(static_cast<uint16_t>(c), payload);
}

std::string ToString(const RawReply& r) {
  return r.failure.empty() ? "status " + std::to_string(r.status) + " " + r.body.dump() : r.failure;
}

double ProcessCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The CPU this process burns while it waits `ms` for `fd` to become readable
// (or just waits, with fd -1), as a fraction of the time waited.
double CpuShareWhileWaiting(int fd, int ms, bool* readable = nullptr) {
  double cpu0 = ProcessCpuSeconds();
  auto t0 = std::chrono::steady_clock::now();
  pollfd p{fd, POLLIN, 0};
  int n = ::poll(&p, fd >= 0 ? 1 : 0, ms);
  if (readable != nullptr) *readable = n == 1;
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return (ProcessCpuSeconds() - cpu0) / wall;
}

// The descriptor of this process that listens on `path` (-1 if none).
int ListenerFd(const std::string& path) {
  DIR* d = ::opendir("/proc/self/fd");
  int found = -1;
  while (dirent* e = ::readdir(d)) {
    int fd = std::atoi(e->d_name);
    if (e->d_name[0] == '.' || fd == ::dirfd(d)) continue;
    sockaddr_un addr{};
    socklen_t len = sizeof addr;
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
        addr.sun_family == AF_UNIX && path == addr.sun_path &&
        ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) == 0 && listening) {
      found = fd;
    }
  }
  ::closedir(d);
  return found;
}

// Takes every free descriptor below 64, so that the next one is 64 or more.
std::vector<ScopedFd> FillDescriptorsBelow64() {
  std::vector<ScopedFd> held;
  for (;;) {
    int fd = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) break;
    if (fd >= 64) {
      ::close(fd);
      break;
    }
    held.emplace_back(fd);
  }
  return held;
}

class ScopedFdLimit {
 public:
  explicit ScopedFdLimit(rlim_t soft) {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit low{soft, saved_.rlim_max};
    ok_ = ::setrlimit(RLIMIT_NOFILE, &low) == 0;
  }
  ~ScopedFdLimit() { Restore(); }
  void Restore() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  bool ok_ = false;
};

// ---- Exceptions and hostile payloads (issue items 6 and 13)

class ThrowingServerTest : public ServerTest {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cppdiag-ipc-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    DiagnosticServer::Handlers h;
    h[Command::kProcessInfo] = [](const nlohmann::json&, const PeerInfo&) {
      return Result<nlohmann::json>(nlohmann::json{{"ok", true}});
    };
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
    auto s = DiagnosticServer::Start(
        {.tmpdir = dir_, .read_timeout = std::chrono::milliseconds(300)}, std::move(h));
    ASSERT_TRUE(s.ok()) << s.error().message();
    server_ = std::move(*s);
  }
};

TEST_F(ThrowingServerTest, AHandlerThatRunsOutOfMemoryGetsAnEnomemReply) {
  RawReply r = Exchange(server_->socket_path(), Frame(Command::kCounters, "{}"));
  ASSERT_TRUE(r.failure.empty()) << r.failure;
  EXPECT_EQ(r.status, static_cast<uint16_t>(ReplyStatus::kError));
  EXPECT_EQ(r.body.value("code", ""), "ENOMEM") << ToString(r);
  EXPECT_TRUE(Call(endpoint(), Command::kProcessInfo, nlohmann::json::object()).ok());
}

TEST_F(ThrowingServerTest, AHandlerThatThrowsANonStandardExceptionGetsAnErrorReply) {
  RawReply r = Exchange(server_->socket_path(), Frame(Command::kTrace, "{}"));
  ASSERT_TRUE(r.failure.empty()) << r.failure;
  EXPECT_EQ(r.status, static_cast<uint16_t>(ReplyStatus::kError)) << ToString(r);
  EXPECT_TRUE(r.body.contains("error")) << ToString(r);
  EXPECT_TRUE(Call(endpoint(), Command::kProcessInfo, nlohmann::json::object()).ok());
}

TEST_F(ThrowingServerTest, DeeplyNestedJsonIsRefusedBeforeParsing) {
  RawReply r =
      Exchange(server_->socket_path(), Frame(Command::kProcessInfo, std::string(60000, '[')));
  ASSERT_TRUE(r.failure.empty()) << r.failure;
  EXPECT_NE(r.body.value("error", "").find("nesting too deep"), std::string::npos) << ToString(r);
  // Nesting within the cap, and brackets inside strings, are fine.
  EXPECT_TRUE(Call(endpoint(), Command::kProcessInfo,
                   {{"a", {{"b", {1, 2, {3}}}}}, {"s", std::string(1000, '[')}})
                  .ok());
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
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EBUSY);
  EXPECT_EQ(r.error().message(), "busy on purpose");
}

TEST_F(ThrowingServerTest, StringsThatAreNotUtf8AreReplacedNotFatal) {
  auto r = Call(endpoint(), Command::kDump, nlohmann::json::object());
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)["name"], "app\xEF\xBF\xBD\xEF\xBF\xBD");
}

// ---- Deadlines (issue item 9)

TEST(ServerDeadlines, ARequestTricklingInIsCutOffAtTheRequestDeadline) {
  char tmpl[] = "/tmp/cppdiag-ipc-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  DiagnosticServer::Handlers h;
  h[Command::kProcessInfo] = [](const nlohmann::json&, const PeerInfo&) {
    return Result<nlohmann::json>(nlohmann::json{{"ok", true}});
  };
  auto s = DiagnosticServer::Start({.tmpdir = dir, .read_timeout = std::chrono::seconds(1)},
                                   std::move(h));
  ASSERT_TRUE(s.ok()) << s.error().message();
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
  std::filesystem::remove_all(dir);
}

TEST(ServerDeadlines, AReplyReadSlowlyIsCutOffAtTheReplyDeadline) {
  char tmpl[] = "/tmp/cppdiag-ipc-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  DiagnosticServer::Handlers h;
  h[Command::kProcessInfo] = [](const nlohmann::json&, const PeerInfo&) {
    return Result<nlohmann::json>(nlohmann::json{{"big", std::string(16 << 20, 'x')}});
  };
  auto s = DiagnosticServer::Start({.tmpdir = dir,
                                    .read_timeout = std::chrono::seconds(1),
                                    .write_timeout = std::chrono::seconds(1)},
                                   std::move(h));
  ASSERT_TRUE(s.ok()) << s.error().message();
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
  std::filesystem::remove_all(dir);
}

// ---- The accept loop (issue item 8)

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
  EXPECT_TRUE(Call(endpoint(), Command::kProcessInfo, nlohmann::json::object()).ok());
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
  char tmpl[] = "/tmp/cppdiag-ipc-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  DiagnosticServer::Handlers h;
  h[Command::kProcessInfo] = [](const nlohmann::json&, const PeerInfo&) {
    return Result<nlohmann::json>(nlohmann::json{{"ok", true}});
  };
  // A free descriptor below the server's, so that the connection it accepts
  // next does not take the number of the listener closed below.
  ScopedFd gap(::fcntl(0, F_DUPFD_CLOEXEC, 0));
  auto s = DiagnosticServer::Start({.tmpdir = dir}, std::move(h));
  ASSERT_TRUE(s.ok()) << s.error().message();
  gap.reset();
  int listener = ListenerFd((*s)->socket_path());
  ASSERT_GE(listener, 0);
  ::close(listener);  // as a program that closes every descriptor it did not open would
  // One request over the abstract socket wakes the loop; it then polls the closed one.
  Endpoint abstract{"", (*s)->socket_name()};
  EXPECT_TRUE(Call(abstract, Command::kProcessInfo, nlohmann::json::object()).ok());
  double share = CpuShareWhileWaiting(-1, 500);
  EXPECT_LT(share, 0.1) << "CPU share of the process with a listener closed underneath";
  EXPECT_TRUE(Call(abstract, Command::kProcessInfo, nlohmann::json::object()).ok());
  s->reset();
  std::filesystem::remove_all(dir);
}

// ---- Either socket alone is enough (issue item 13)

TEST(ServerSockets, ATooLongSocketPathLeavesTheAbstractSocket) {
  char tmpl[] = "/tmp/cppdiag-ipc-XXXXXX";
  std::string base = ::mkdtemp(tmpl);
  std::string dir = base + "/" + std::string(100, 'd');
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  DiagnosticServer::Handlers h;
  h[Command::kProcessInfo] = [](const nlohmann::json&, const PeerInfo&) {
    return Result<nlohmann::json>(nlohmann::json{{"ok", true}});
  };
  auto s = DiagnosticServer::Start({.tmpdir = dir}, std::move(h));
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ((*s)->socket_path(), "");
  EXPECT_TRUE(
      Call({"", (*s)->socket_name()}, Command::kProcessInfo, nlohmann::json::object()).ok());
  s->reset();
  std::filesystem::remove_all(base);
}

TEST(ServerSockets, ASquattedSocketPathLeavesTheAbstractSocketAndTheSquatterAlone) {
  char tmpl[] = "/tmp/cppdiag-ipc-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  auto self = ReadProcStat(::getpid());
  ASSERT_TRUE(self.ok());
  std::string squatted = dir + "/" + SocketName(::getpid(), self->start_time_ticks);
  { std::ofstream(squatted) << "not a socket"; }
  DiagnosticServer::Handlers h;
  h[Command::kProcessInfo] = [](const nlohmann::json&, const PeerInfo&) {
    return Result<nlohmann::json>(nlohmann::json{{"ok", true}});
  };
  auto s = DiagnosticServer::Start({.tmpdir = dir}, std::move(h));
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_TRUE(
      Call({"", (*s)->socket_name()}, Command::kProcessInfo, nlohmann::json::object()).ok());
  s->reset();
  struct stat st {};
  EXPECT_EQ(::stat(squatted.c_str(), &st), 0) << "the server removed a file it did not make";
  std::filesystem::remove_all(dir);
}

// ---- Large replies one at a time (issue item 13)

TEST(ServerExclusive, ASecondHeapSnapshotWhileOneIsBeingTakenIsToldBusy) {
  char tmpl[] = "/tmp/cppdiag-ipc-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, release = false;
  std::atomic<int> calls{0};
  DiagnosticServer::Handlers h;
  h[Command::kHeapSnapshot] = [&](const nlohmann::json&, const PeerInfo&) {
    ++calls;
    std::unique_lock lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return release; });
    return Result<nlohmann::json>(nlohmann::json{{"stacks", nlohmann::json::array()}});
  };
  auto s = DiagnosticServer::Start({.tmpdir = dir}, std::move(h));
  ASSERT_TRUE(s.ok()) << s.error().message();
  Endpoint e{(*s)->socket_path(), ""};
  std::optional<Result<nlohmann::json>> first;
  std::thread t([&] { first = Call(e, Command::kHeapSnapshot, nlohmann::json::object()); });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return entered; }));
  }
  auto second = Call(e, Command::kHeapSnapshot, nlohmann::json::object(), std::chrono::seconds(2));
  {
    std::lock_guard lock(mu);
    release = true;
    cv.notify_all();
  }
  t.join();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), EBUSY) << second.error().message();
  EXPECT_NE(second.error().message().find("heap-snapshot"), std::string::npos)
      << second.error().message();
  ASSERT_TRUE(first && first->ok());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(Call(e, Command::kHeapSnapshot, nlohmann::json::object()).ok());  // free again
  s->reset();
  std::filesystem::remove_all(dir);
}

// ---- Refusals are logged with a rate limit (issue item 13)

TEST_F(ServerTest, RefusalsAreLoggedAtMostAboutOncePerSecond) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become another uid";
  ::chmod(dir_.c_str(), 0755);
  ::chmod(server_->socket_path().c_str(), 0666);
  std::string log = dir_ + "/stderr";
  ScopedFd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ScopedFd saved(::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0));
  ::dup2(log_fd.get(), STDERR_FILENO);
  std::string path = server_->socket_path();
  pid_t child = ::fork();
  if (child == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) _exit(3);
    for (int i = 0; i < 50; ++i) {
      int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (!ConnectTo(fd, path)) _exit(4);
      char c;
      (void)!::read(fd, &c, 1);  // the refusal's reply: one at a time
      ::close(fd);
    }
    _exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ::dup2(saved.get(), STDERR_FILENO);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(server_->requests_refused(), 50u);
  std::ifstream in(log);
  int lines = 0;
  for (std::string line; std::getline(in, line);)
    lines += line.find("refused") != std::string::npos;
  EXPECT_LE(lines, 5) << "lines logged for 50 refusals";
  EXPECT_GE(lines, 1);
}

}  // namespace
}  // namespace cppdiag::ipc
