#include "diag/ipc/dump_path.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/io.h"

namespace cppdiag::ipc {
namespace {

namespace fs = std::filesystem;

class DumpPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cppdiag-dumppath-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    dir_ = root_ + "/dumps";
    fs::create_directories(dir_ + "/sub");
    fs::create_directories(root_ + "/elsewhere");
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string root_, dir_;
};

TEST_F(DumpPathTest, AcceptsPathsInsideTheDirectory) {
  EXPECT_EQ(*ResolveDumpPath("core.1", dir_, false), dir_ + "/core.1");
  EXPECT_EQ(*ResolveDumpPath(dir_ + "/core.2", dir_, false), dir_ + "/core.2");
  EXPECT_EQ(*ResolveDumpPath("sub/core.3", dir_, false), dir_ + "/sub/core.3");
}

TEST_F(DumpPathTest, RefusesEscapes) {
  auto up = ResolveDumpPath("../elsewhere/core", dir_, false);
  ASSERT_FALSE(up.ok());
  EXPECT_NE(up.error().message().find("'..'"), std::string::npos);
  auto outside = ResolveDumpPath(root_ + "/elsewhere/core", dir_, false);
  ASSERT_FALSE(outside.ok());
  EXPECT_NE(outside.error().message().find("outside the dump directory"), std::string::npos);
  EXPECT_FALSE(ResolveDumpPath("/etc/passwd", dir_, true).ok());
  // A symlinked directory inside that points outside.
  fs::create_directory_symlink(root_ + "/elsewhere", dir_ + "/link");
  EXPECT_FALSE(ResolveDumpPath("link/core", dir_, false).ok());
}

TEST_F(DumpPathTest, RefusesASymlinkPlantedAtThePath) {
  fs::create_symlink(root_ + "/elsewhere/target", dir_ + "/core.planted");
  auto r = ResolveDumpPath("core.planted", dir_, true);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("symbolic link"), std::string::npos);
}

TEST_F(DumpPathTest, ExistingFilesOnlyWithOverwrite) {
  ASSERT_TRUE(WriteStringToFile(dir_ + "/core.old", "x").ok());
  auto r = ResolveDumpPath("core.old", dir_, false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("exists"), std::string::npos);
  EXPECT_EQ(*ResolveDumpPath("core.old", dir_, true), dir_ + "/core.old");
  EXPECT_FALSE(ResolveDumpPath("sub", dir_, true).ok()) << "a directory is not a dump";
}

TEST_F(DumpPathTest, MissingDumpDirectoryIsAClearError) {
  auto r = ResolveDumpPath("core", root_ + "/nope", false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("CPPDIAG_DUMP_DIR"), std::string::npos);
}

}  // namespace
}  // namespace cppdiag::ipc
