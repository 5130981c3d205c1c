// The diagnostic server's request and reply: progress frames, handler
// errors, concurrent clients, one large reply at a time. Its sockets, peer
// checks, hostile input, deadlines and accept loop have files of their own
// (server_*_test.cc).
#include "diag/ipc/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "diag/ipc/client.h"
#include "diag/ipc/testing/server_fixture.h"
#include "support/poll.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"

namespace cppdiag::ipc {
namespace {

using ::cppdiag::testing::IsOk;
using ::cppdiag::testing::ScopedTempDir;
using ::cppdiag::testing::StatusIs;
using ::testing::HasSubstr;
using testing::OkHandlers;
using testing::ServerTest;

TEST_F(ServerTest, ProgressFramesComeBeforeTheReplyWhenAskedFor) {
  std::vector<std::pair<uint64_t, uint64_t>> seen;
  auto r = Call(endpoint(), Command::kDump, {{"type", "full"}}, std::chrono::seconds(5),
                [&](const nlohmann::json& p) {
                  seen.emplace_back(p.at("bytes_written").get<uint64_t>(),
                                    p.at("bytes_total").get<uint64_t>());
                });
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ((*r)["frames"], 4);
  std::vector<std::pair<uint64_t, uint64_t>> expected = {
      {0, 300}, {100, 300}, {200, 300}, {300, 300}};
  EXPECT_EQ(seen, expected);
}

TEST_F(ServerTest, NoProgressFramesForARequestThatDidNotAsk) {
  // An older client: one frame back, the reply.
  auto r = Call(endpoint(), Command::kDump, {{"type", "full"}});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ((*r)["frames"], 0);
  auto f = Call(endpoint(), Command::kDump, {{"type", "full"}, {"progress", "yes"}});
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ((*f)["frames"], 0);  // only a JSON true asks
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

TEST(ServerExclusive, ASecondHeapSnapshotWhileOneIsBeingTakenIsToldBusy) {
  ScopedTempDir tmp("cppdiag-ipc");
  const std::string& dir = tmp.path();
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
    cv.wait_for(lock, std::chrono::seconds(30), [&] { return release; });
    return Result<nlohmann::json>(nlohmann::json{{"stacks", nlohmann::json::array()}});
  };
  auto s = DiagnosticServer::Start({.tmpdir = dir}, std::move(h));
  ASSERT_THAT(s, IsOk());
  Endpoint e{(*s)->socket_path(), ""};
  std::optional<Result<nlohmann::json>> first;
  std::thread t([&] { first = Call(e, Command::kHeapSnapshot, nlohmann::json::object()); });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return entered; }));
  }
  // The busy reply comes at once; the timeout only bounds a failure (2 s
  // was too short for a CI machine at a load of 10).
  auto second = Call(e, Command::kHeapSnapshot, nlohmann::json::object(), std::chrono::seconds(20));
  {
    std::lock_guard lock(mu);
    release = true;
    cv.notify_all();
  }
  t.join();
  EXPECT_THAT(second, StatusIs(EBUSY, HasSubstr("heap-snapshot")));
  ASSERT_TRUE(first && first->ok());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_THAT(Call(e, Command::kHeapSnapshot, nlohmann::json::object()), IsOk());  // free again
  s->reset();
}

// A handler that runs until the server goes (an open-ended trace) is told
// when the server is being destroyed, which waits for it: the process exits
// instead of hanging.
TEST(ServerStopping, ALongHandlerSeesTheServerStopAndTheDestructorReturns) {
  ScopedTempDir tmp("cppdiag-ipc");
  std::atomic<bool> entered{false}, saw_stop{false};
  DiagnosticServer::Handlers h;
  h[Command::kProcessInfo] = [&](const nlohmann::json&, const PeerInfo& peer) {
    entered = true;
    while (!peer.ServerStopping()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    saw_stop = true;
    return Result<nlohmann::json>(nlohmann::json::object());
  };
  auto s = DiagnosticServer::Start({.tmpdir = tmp.path()}, std::move(h));
  ASSERT_THAT(s, IsOk());
  Endpoint e{(*s)->socket_path(), ""};
  std::thread client([&] { (void)Call(e, Command::kProcessInfo, nlohmann::json::object()); });
  ASSERT_TRUE(
      ::cppdiag::testing::PollUntil([&] { return entered.load(); }, std::chrono::seconds(10)));
  s->reset();  // returns only once the handler has ended
  EXPECT_TRUE(saw_stop);
  client.join();
}

}  // namespace
}  // namespace cppdiag::ipc
