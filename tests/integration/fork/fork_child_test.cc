// A forked child of a process that runs libcppdiag is another process: it must
// hold no handle on the parent's memory or sockets, and its exit must leave the
// parent's runtime serving. A plain C service (forking_service.c) under
// LD_PRELOAD=libcppdiag_preload.so, with every part of the runtime on: the
// socket, crash dumps and the pre-OOM watchdog in a memory cgroup.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>

#include "common/scoped_fd.h"
#include "support/scoped_cgroup.h"
#include "support/scoped_temp_dir.h"
#include "support/subprocess.h"

namespace cppdiag::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class ForkChild : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (a memory cgroup for the watchdog)";
    cgroup_ = std::make_unique<ScopedCgroup>(512ull << 20);
    if (!cgroup_->ok()) GTEST_SKIP() << "no memory cgroup: " << cgroup_->why_not();
    ::chmod(dir_.c_str(), 0755);  // as before: the service's child drops to uid 65534
  }

  std::unique_ptr<Subprocess> StartService(const char* mode) {
    auto p = std::make_unique<Subprocess>(
        SubprocessOptions{.argv = {FORKING_SERVICE, mode},
                          .env = {{"LD_PRELOAD", CPPDIAG_PRELOAD_LIB},
                                  {"TMPDIR", dir_.string()},
                                  {"CPPDIAG_DUMP_DIR", dir_.string()},
                                  {"CPPDIAG_ENABLE_DUMP_ON_CRASH", "1"},
                                  {"CPPDIAG_OOM_DUMP_THRESHOLD", "99"}},
                          .cgroup_procs = cgroup_->procs_file()});
    EXPECT_TRUE(p->WaitForOutput("ready", 30s)) << p->Stdout() << p->Stderr();
    return p;
  }

  // The service's diagnostic socket file, or "" if there is none.
  std::string SocketOf(pid_t pid) const {
    std::string prefix = "cppdiag-" + std::to_string(pid) + "-";
    for (const auto& e : fs::directory_iterator(dir_)) {
      std::string name = e.path().filename().string();
      if (name.starts_with(prefix) && name.ends_with("-socket")) return e.path().string();
    }
    return "";
  }

  // A request in flight when the service forks: its worker waits for the rest
  // of the header, and the child inherits that state (and its connection).
  ScopedFd RequestInFlight(pid_t pid) {
    ScopedFd conn(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, SocketOf(pid).c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::connect(conn.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::send(conn.get(), "CD", 2, MSG_NOSIGNAL), 2);
    EXPECT_TRUE(PollUntil([&] { return HasThread(pid, "cppdiag-request"); }, 10s));
    return conn;
  }

  static bool HasThread(pid_t pid, const std::string& name) {
    for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
      std::string comm = ReadAll(t.path().string() + "/comm");
      if (comm == name + "\n") return true;
    }
    return false;
  }

  std::unique_ptr<ScopedCgroup> cgroup_;
  ScopedTempDir tmp_{"cppdiag-fork", fs::temp_directory_path().string()};
  fs::path dir_ = tmp_.path();
};

TEST_F(ForkChild, HoldsNoDescriptorOfTheRuntime) {
  auto service = StartService("fds");
  ScopedFd conn = RequestInFlight(service->pid());
  service->Signal(SIGUSR1);
  ASSERT_TRUE(service->WaitForOutput("child fds", 30s)) << service->Stdout() << service->Stderr();
  // Before the fix the child held 11 (16 with the connection): /proc/<parent>/mem,
  // maps, task and pagemap, the listening sockets, the eventfds, the cgroup
  // usage file, and uid 65534 read the parent's secret through mem.
  EXPECT_NE(service->Stdout().find("child fds 0 leaked 0"), std::string::npos) << service->Stdout();
}

TEST_F(ForkChild, ExitingChildLeavesTheParentServing) {
  auto service = StartService("exit");
  pid_t pid = service->pid();
  std::string socket_path = SocketOf(pid);
  ASSERT_FALSE(socket_path.empty());
  // The watchdog names its thread once it runs: wait for that, not for "ready".
  ASSERT_TRUE(PollUntil([&] { return HasThread(pid, "cppdiag-oom"); }, 10s));

  ScopedFd conn = RequestInFlight(pid);

  service->Signal(SIGUSR1);
  ASSERT_TRUE(service->WaitForOutput("child ", 30s)) << service->Stdout();
  EXPECT_NE(service->Stdout().find("child exited 0"), std::string::npos) << service->Stdout();

  // The parent's runtime is untouched: its socket file, its watchdog, its server.
  EXPECT_TRUE(fs::exists(socket_path));
  EXPECT_TRUE(HasThread(pid, "cppdiag-oom"));
  CliRun dump = Cppdiag({"dump", "collect", "-p", std::to_string(pid), "--type", "triage", "-o",
                         (dir_ / "after-fork.core").string()},
                        20s);
  EXPECT_EQ(dump.exit_code, 0) << dump.out << dump.err << service->Stderr();
  EXPECT_TRUE(fs::exists(dir_ / "after-fork.core"));
}

}  // namespace
}  // namespace cppdiag::testing
