#include "cli/target_root.h"
#include "support/status_matchers.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace cppdiag::cli {
namespace {

using ::cppdiag::testing::IsOk;

namespace fs = std::filesystem;

// A target's filesystem laid out under root/, with a FIFO and a secret
// outside it. Every test runs with openat2 and with the component walk.
class TargetRootTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    // A FIFO opened for reading with no writer blocks: a regression must
    // fail the test, not hang it.
    ::alarm(60);
    TargetRoot::ForceComponentWalkForTesting(GetParam());
    base_ = fs::path(::testing::TempDir()) / ("target-root-" + std::to_string(::getpid()));
    fs::remove_all(base_);
    fs::create_directories(base_ / "root/usr/lib");
    fs::create_directories(base_ / "root/run/secrets");
    fs::create_directories(base_ / "outside");
    Write("root/usr/lib/libfoo.so", "inside");
    Write("root/run/secrets/namespace", "team-a\n");
    Write("outside/secret", "outside");
    ASSERT_EQ(::mkfifo((base_ / "outside/fifo").c_str(), 0600), 0);
    ASSERT_EQ(::mkfifo((base_ / "root/usr/lib/fifo.so").c_str(), 0600), 0);
    fs::create_directory_symlink("/run", base_ / "root/var-run");  // absolute, as /var/run is
    fs::create_directory_symlink("usr/lib", base_ / "root/lib");   // relative
    auto r = TargetRoot::Open((base_ / "root").string());
    ASSERT_THAT(r, IsOk());
    root_.emplace(std::move(*r));
  }
  void TearDown() override {
    TargetRoot::ForceComponentWalkForTesting(false);
    fs::remove_all(base_);
    ::alarm(0);
  }
  void Write(const std::string& rel, const std::string& text) {
    std::ofstream(base_ / rel) << text;
  }
  std::string Read(const std::string& path) {
    auto text = root_->ReadSmallFile(path, 4096);
    return text ? *text : "error: " + text.error().message();
  }
  int OpenError(const std::string& path) {
    auto fd = root_->OpenRegularFile(path);
    return fd ? 0 : fd.error().code();
  }

  fs::path base_;
  std::optional<TargetRoot> root_;
};

TEST_P(TargetRootTest, OpensARegularFileAsTheTargetNamesIt) {
  EXPECT_EQ(Read("/usr/lib/libfoo.so"), "inside");
  EXPECT_EQ(Read("usr/lib/libfoo.so"), "inside");
  auto fd = root_->OpenRegularFile("/usr/lib/libfoo.so");
  ASSERT_THAT(fd, IsOk());
  char buf[16] = {};
  EXPECT_EQ(::read(fd->get(), buf, sizeof buf), 6);
}

TEST_P(TargetRootTest, ResolvesLinksOnTheWayInTheTargetsFilesystem) {
  EXPECT_EQ(Read("/var-run/secrets/namespace"), "team-a\n");  // "/run" under root, not ours
  EXPECT_EQ(Read("/lib/libfoo.so"), "inside");
}

TEST_P(TargetRootTest, DotDotAndAbsoluteLinksStopAtTheRoot) {
  EXPECT_EQ(OpenError("/../outside/secret"), ENOENT);
  EXPECT_EQ(OpenError("/usr/../../../outside/secret"), ENOENT);
  fs::create_directory_symlink("/../../outside", base_ / "root/escape");
  fs::create_directory_symlink((base_ / "outside").string(), base_ / "root/escape-abs");
  EXPECT_EQ(OpenError("/escape/secret"), ENOENT);
  EXPECT_EQ(OpenError("/escape-abs/secret"), ENOENT);
  EXPECT_EQ(Read("/usr/lib/../../usr/lib/libfoo.so"), "inside");
}

TEST_P(TargetRootTest, RefusesAFifoWithoutBlocking) {
  EXPECT_EQ(OpenError("/usr/lib/fifo.so"), EINVAL);
}

TEST_P(TargetRootTest, RefusesASymlinkAsTheLastComponent) {
  fs::create_symlink((base_ / "outside/fifo").string(), base_ / "root/usr/lib/libtrap.so");
  fs::create_symlink("libfoo.so", base_ / "root/usr/lib/libalias.so");
  EXPECT_EQ(OpenError("/usr/lib/libtrap.so"), ELOOP);
  EXPECT_EQ(OpenError("/usr/lib/libalias.so"), ELOOP);
}

TEST_P(TargetRootTest, FollowsALastLinkOnlyWhenAskedAndOnlyInsideTheRoot) {
  // A service-account mount: namespace -> ..data/namespace, ..data -> ..2024.
  fs::create_directories(base_ / "root/sa/..2024");
  Write("root/sa/..2024/namespace", "team-b");
  fs::create_directory_symlink("..2024", base_ / "root/sa/..data");
  fs::create_symlink("..data/namespace", base_ / "root/sa/namespace");
  auto text = root_->ReadSmallFile("/sa/namespace", 4096, LastLink::kFollow);
  ASSERT_THAT(text, IsOk());
  EXPECT_EQ(*text, "team-b");
  EXPECT_EQ(OpenError("/sa/namespace"), ELOOP);
  // Followed, a link still stays inside, and still reaches regular files only.
  fs::create_symlink((base_ / "outside/secret").string(), base_ / "root/sa/out");
  fs::create_symlink("/usr/lib/fifo.so", base_ / "root/sa/fifo");
  auto out = root_->OpenRegularFile("/sa/out", LastLink::kFollow);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code(), ENOENT);
  auto fifo = root_->OpenRegularFile("/sa/fifo", LastLink::kFollow);
  ASSERT_FALSE(fifo.ok());
  EXPECT_EQ(fifo.error().code(), EINVAL);
}

TEST_P(TargetRootTest, RefusesDevicesAndDirectories) {
  // /dev/null reached through a link inside the root: the link stays inside
  // (no such file there); a device node inside the root is not opened.
  fs::create_directory_symlink("/dev", base_ / "root/devices");
  EXPECT_EQ(OpenError("/devices/null"), ENOENT);
  auto dev = TargetRoot::Open("/");
  ASSERT_THAT(dev, IsOk());
  auto fd = dev->OpenRegularFile("/dev/null");
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error().code(), EINVAL);
  EXPECT_NE(OpenError("/usr/lib"), 0);
  EXPECT_NE(OpenError("/"), 0);
}

TEST_P(TargetRootTest, MagicLinksAreNotFollowed) {
  // /proc/self/root is a magic link: openat2 refuses it; the walk takes it
  // by its text ("/"), which resolves under the root it walks in.
  auto self = TargetRoot::Open("/");
  ASSERT_THAT(self, IsOk());
  std::string via_proc = "/proc/self/root" + (base_ / "outside/secret").string();
  auto fd = self->OpenRegularFile(via_proc);
  if (GetParam()) {
    EXPECT_THAT(fd, IsOk());
  } else {
    ASSERT_FALSE(fd.ok());
    EXPECT_EQ(fd.error().code(), ELOOP);
  }
}

TEST_P(TargetRootTest, ReadsAtMostTheCap) {
  Write("root/big", std::string(5000, 'x'));
  auto text = root_->ReadSmallFile("/big", 4096);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().code(), EFBIG);
}

INSTANTIATE_TEST_SUITE_P(Resolution, TargetRootTest, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Walk" : "Openat2"; });

}  // namespace
}  // namespace cppdiag::cli
