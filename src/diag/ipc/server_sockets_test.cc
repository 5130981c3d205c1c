// The diagnostic server's two sockets: the file's name and mode, the
// abstract one, and either alone when the other cannot be made.
#include "diag/ipc/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "common/proc.h"
#include "diag/ipc/client.h"
#include "diag/ipc/testing/server_fixture.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"

namespace cppdiag::ipc {
namespace {

using ::cppdiag::testing::IsOk;
using ::cppdiag::testing::ScopedTempDir;
using testing::OkHandlers;
using testing::ServerTest;

TEST_F(ServerTest, SocketIsNamedByPidAndStartTimeWithMode0600) {
  EXPECT_EQ(server_->socket_name().rfind("cppdiag-" + std::to_string(getpid()) + "-", 0), 0u);
  struct stat st {};
  ASSERT_EQ(::stat(server_->socket_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ServerTest, AnswersOverTheFileAndTheAbstractSocket) {
  auto r = Call(endpoint(), Command::kProcessInfo, {{"echo", "hi"}});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ((*r)["pid"], getpid());
  EXPECT_EQ((*r)["echo"], "hi");
  auto a = Call({"", server_->socket_name()}, Command::kProcessInfo, nlohmann::json::object());
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ((*a)["pid"], getpid());
}

TEST(ServerSockets, ATooLongSocketPathLeavesTheAbstractSocket) {
  ScopedTempDir tmp("cppdiag-ipc");
  std::string dir = tmp.Join(std::string(100, 'd'));
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  DiagnosticServer::Handlers h = OkHandlers();
  auto s = DiagnosticServer::Start({.tmpdir = dir}, std::move(h));
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ((*s)->socket_path(), "");
  EXPECT_THAT(Call({"", (*s)->socket_name()}, Command::kProcessInfo, nlohmann::json::object()),
              IsOk());
  s->reset();
}

TEST(ServerSockets, ASquattedSocketPathLeavesTheAbstractSocketAndTheSquatterAlone) {
  ScopedTempDir tmp("cppdiag-ipc");
  const std::string& dir = tmp.path();
  auto self = ReadProcStat(::getpid());
  ASSERT_THAT(self, IsOk());
  std::string squatted = dir + "/" + SocketName(::getpid(), self->start_time_ticks);
  { std::ofstream(squatted) << "not a socket"; }
  DiagnosticServer::Handlers h = OkHandlers();
  auto s = DiagnosticServer::Start({.tmpdir = dir}, std::move(h));
  ASSERT_THAT(s, IsOk());
  EXPECT_THAT(Call({"", (*s)->socket_name()}, Command::kProcessInfo, nlohmann::json::object()),
              IsOk());
  s->reset();
  struct stat st {};
  EXPECT_EQ(::stat(squatted.c_str(), &st), 0) << "the server removed a file it did not make";
}

}  // namespace
}  // namespace cppdiag::ipc
