// A dump requested over the socket into a full filesystem: the real leakapp
// with CPPDIAG_DUMP_DIR on a 1 MiB tmpfs, the real CLI. The request fails
// with a one-line error naming ENOSPC, the tmpfs is left empty, and the
// target goes on serving. The tmpfs is mounted in a mount namespace of this
// test process's own (needs root), so nothing is left mounted on the host.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/proc.h"
#include "diag/ipc/client.h"
#include "diag/ipc/protocol.h"
#include "integration/leakapp/leakapp_process.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"
#include "support/subprocess.h"

namespace cppdiag::testing {
namespace {

using ::cppdiag::testing::IsOk;

using ::cppdiag::testing::ScopedTempDir;

namespace fs = std::filesystem;

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename());
  return out;
}

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount namespace, tmpfs)";
    if (::unshare(CLONE_NEWNS) != 0) GTEST_SKIP() << "unshare(CLONE_NEWNS): " << errno;
    ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0);
    root_ = tmp_.path();
    dumps_ = root_ + "/dumps";
    tmpdir_ = root_ + "/tmp";
    fs::create_directories(dumps_);
    fs::create_directories(tmpdir_);
    ASSERT_EQ(::mount("tmpfs", dumps_.c_str(), "tmpfs", 0, "size=1m,mode=0700"), 0);
  }
  void TearDown() override {
    if (!dumps_.empty()) ::umount2(dumps_.c_str(), MNT_DETACH);
  }
  ScopedTempDir tmp_{"cppdiag-diskfull"};  // removed after TearDown's umount
  std::string root_, dumps_, tmpdir_;
};

TEST_F(DiskFullTest, ADumpIntoAFullFilesystemSaysENOSPCLeavesNothingAndTheTargetServes) {
  LeakappProcess app({.env = {{"CPPDIAG_DUMP_DIR", dumps_},
                              {"CPPDIAG_DUMP_NAME", dumps_ + "/core.%p.%r"},
                              {"TMPDIR", tmpdir_}}});
  ASSERT_TRUE(app.WaitUntilReady());
  std::string pid = std::to_string(app.pid());

  CliRun dump = Cppdiag({"dump", "collect", "-p", pid, "--type", "full"});
  EXPECT_NE(dump.exit_code, 0) << dump.out << dump.err;
  EXPECT_EQ(std::count(dump.err.begin(), dump.err.end(), '\n'), 1) << dump.err;
  EXPECT_NE(dump.err.find("ENOSPC"), std::string::npos) << dump.err;
  EXPECT_NE(dump.err.find("No space left on device"), std::string::npos) << dump.err;
  EXPECT_NE(dump.err.find(dumps_ + "/core." + pid + ".on-demand"), std::string::npos)
      << "says which file: " << dump.err;
  EXPECT_EQ(Files(dumps_), std::vector<std::string>{}) << "nothing left behind";

  // The target answers the next request, on its socket and over HTTP.
  auto stat = ReadProcStat(app.pid());
  ASSERT_THAT(stat, IsOk());
  std::string socket = tmpdir_ + "/" + ipc::SocketName(app.pid(), stat->start_time_ticks);
  auto info = ipc::Call({.path = socket}, ipc::Command::kProcessInfo, nlohmann::json::object());
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->value("pid", 0), app.pid());
  CliRun ps = Cppdiag({"ps"}, std::chrono::seconds(60));
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
  auto healthz = app.Get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
  EXPECT_TRUE(app.process().running()) << app.Output();
}

}  // namespace
}  // namespace cppdiag::testing
