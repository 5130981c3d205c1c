#include "cli/discovery.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/scoped_fd.h"
#include "diag/ipc/protocol.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"

namespace cppdiag::cli {
namespace {

using ::cppdiag::testing::IsOk;

using ::cppdiag::testing::ScopedTempDir;

namespace fs = std::filesystem;

constexpr pid_t kPid = 4242;  // as the tool sees it
constexpr pid_t kNsPid = 7;   // as the target sees itself
constexpr uint64_t kStart = 123456;

// A fake /proc with one target whose root is a directory of the fixture.
class DiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proc_ = dir_ + "/proc";
    rootfs_ = dir_ + "/rootfs";
    std::string p = proc_ + "/" + std::to_string(kPid);
    fs::create_directories(p);
    fs::create_directories(rootfs_);
    fs::create_directory_symlink(rootfs_, p + "/root");
    std::string stat = std::to_string(kPid) + " (leakapp) S 1";
    for (int field = 5; field <= 52; ++field) {
      stat += " " + std::to_string(field == 22 ? kStart : 0);
    }
    Write(p + "/stat", stat + "\n");
    Write(p + "/status",
          "Name:\tleakapp\nNSpid:\t" + std::to_string(kPid) + "\t" + std::to_string(kNsPid) + "\n");
    Write(p + "/cmdline", std::string("/app/leakapp\0--port\0008080\0", 25));
  }

  void Write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }
  void SetTmpdir(const std::string& tmpdir) {
    Write(proc_ + "/" + std::to_string(kPid) + "/environ",
          std::string("PATH=/bin\0TMPDIR=", 17) + tmpdir + std::string("\0", 1));
  }
  // Binds the target's socket in `dir` (a directory of the fake root).
  void Listen(const std::string& dir) {
    fs::create_directories(rootfs_ + dir);
    std::string path = rootfs_ + dir + "/" + ipc::SocketName(kNsPid, kStart);
    socket_ = ScopedFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(path.size(), sizeof addr.sun_path);
    path.copy(addr.sun_path, path.size());
    ASSERT_EQ(::bind(socket_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << path;
  }

  ScopedTempDir tmp_{"cppdiag-discovery"};
  std::string dir_ = tmp_.path(), proc_, rootfs_;
  ScopedFd socket_;
};

TEST_F(DiscoveryTest, FindsTheSocketInTheTargetsTmpdirThroughItsRoot) {
  SetTmpdir("/run/app");
  Listen("/run/app");
  auto t = FindTarget(kPid, proc_);
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(t->ns_pid, kNsPid);
  EXPECT_EQ(t->name, "leakapp");
  EXPECT_EQ(t->argv, (std::vector<std::string>{"/app/leakapp", "--port", "8080"}));
  EXPECT_EQ(t->command_line, "/app/leakapp --port 8080");
  EXPECT_EQ(t->endpoint.path, proc_ + "/" + std::to_string(kPid) + "/root/run/app/" +
                                  ipc::SocketName(kNsPid, kStart));
}

// An absolute symlink in the target's filesystem points into the target's
// filesystem, not this tool's.
TEST_F(DiscoveryTest, ResolvesAbsoluteSymlinksInTheTargetsFilesystem) {
  Listen("/var/tmp/app");
  fs::create_directory_symlink("/var/tmp", rootfs_ + "/tmp");        // absolute
  fs::create_directory_symlink("../tmp/app", rootfs_ + "/var/app");  // relative, via the absolute
  for (const char* tmpdir : {"/tmp/app", "/var/app", "/var/app/", "/var/./tmp/../tmp/app"}) {
    SetTmpdir(tmpdir);
    auto t = FindTarget(kPid, proc_);
    ASSERT_TRUE(t.ok()) << tmpdir << ": " << t.error().message();
    EXPECT_EQ(t->endpoint.path, proc_ + "/" + std::to_string(kPid) + "/root/var/tmp/app/" +
                                    ipc::SocketName(kNsPid, kStart))
        << tmpdir;
  }
}

TEST_F(DiscoveryTest, NoSocketSaysSo) {
  SetTmpdir("/tmp");
  auto t = FindTarget(kPid, proc_);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message().find("has no diagnostic socket"), std::string::npos)
      << t.error().message();
  EXPECT_EQ(FindTarget(99999, proc_).error().code(), ESRCH);
}

TEST_F(DiscoveryTest, ASymlinkLoopIsNoSocket) {
  fs::create_symlink("/loop", rootfs_ + "/loop");
  SetTmpdir("/loop");
  EXPECT_FALSE(FindTarget(kPid, proc_).ok());
}

}  // namespace
}  // namespace cppdiag::cli
