// Who may talk to the diagnostic server: the client checks who holds the
// socket, the server refuses a peer of another uid (SO_PEERCRED) and logs
// refusals with a rate limit.
#include "diag/ipc/server.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "diag/ipc/client.h"
#include "diag/ipc/testing/raw_client.h"
#include "diag/ipc/testing/server_fixture.h"
#include "support/status_matchers.h"

namespace cppdiag::ipc {
namespace {

using ::cppdiag::testing::IsOk;
using testing::ConnectTo;
using testing::ServerTest;

TEST_F(ServerTest, TheClientChecksWhoHoldsTheSocket) {
  Endpoint squatted{"", server_->socket_name(), /*expected_pid=*/getppid()};
  auto r = Call(squatted, Command::kProcessInfo, nlohmann::json::object());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("is held by pid " + std::to_string(getpid())),
            std::string::npos)
      << r.error().message();
  Endpoint genuine{server_->socket_path(), "", getpid()};
  EXPECT_THAT(Call(genuine, Command::kProcessInfo, nlohmann::json::object()), IsOk());
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
