#include "diag/ipc/dump_path.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/io.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"

namespace cppdiag::ipc {
namespace {

using ::cppdiag::testing::IsOk;

using ::cppdiag::testing::ScopedTempDir;

namespace fs = std::filesystem;

class DumpPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = root_ + "/dumps";
    fs::create_directories(dir_ + "/sub");
    fs::create_directories(root_ + "/elsewhere");
  }
  ScopedTempDir tmp_{"cppdiag-dumppath"};
  std::string root_ = tmp_.path(), dir_;
};

TEST_F(DumpPathTest, AcceptsPathsInsideTheDirectory) {
  EXPECT_EQ(ResolveDumpPath("core.1", dir_, false)->path, dir_ + "/core.1");
  EXPECT_EQ(ResolveDumpPath(dir_ + "/core.2", dir_, false)->path, dir_ + "/core.2");
  EXPECT_EQ(ResolveDumpPath("sub/core.3", dir_, false)->path, dir_ + "/sub/core.3");
  // What the self-dump opens beneath its descriptor of the dump directory.
  EXPECT_EQ(ResolveDumpPath(dir_ + "/core.2", dir_, false)->relative, "core.2");
  EXPECT_EQ(ResolveDumpPath(".//sub/./core.3", dir_, false)->relative, "sub/core.3");
  EXPECT_EQ(ResolveDumpPath(dir_ + "//sub/core.4", dir_ + "/", false)->relative, "sub/core.4");
}

TEST_F(DumpPathTest, AbsolutePathsOutsideAreRefused) {
  for (const std::string& p : {root_ + "/elsewhere/core", std::string("/tmp/core"),
                               root_ + "/dumpsX/core", root_ + "/dumps"}) {
    auto r = ResolveDumpPath(p, dir_, false);
    ASSERT_FALSE(r.ok()) << p;
    EXPECT_NE(r.error().message().find("outside the dump directory"), std::string::npos)
        << r.error().message();
  }
  auto dir_itself = ResolveDumpPath(dir_ + "/", dir_, false);
  ASSERT_FALSE(dir_itself.ok());
  EXPECT_NE(dir_itself.error().message().find("names a directory"), std::string::npos);
}

TEST_F(DumpPathTest, NoSymbolicLinkBelowTheDumpDirectoryEvenOneThatStaysInside) {
  // The self-dump opens beneath the dump directory with RESOLVE_NO_SYMLINKS:
  // a link that points inside is refused too, and says so.
  fs::create_directory_symlink(dir_ + "/sub", dir_ + "/inside-link");
  auto r = ResolveDumpPath("inside-link/core", dir_, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ELOOP);
  EXPECT_NE(r.error().message().find("symbolic link"), std::string::npos) << r.error().message();
  EXPECT_FALSE(ResolveDumpPath(dir_ + "/inside-link/core", dir_, false).ok());
}

TEST_F(DumpPathTest, TheDumpDirectoryItselfMayBeASymbolicLink) {
  // The operator's CPPDIAG_DUMP_DIR is followed (once, when the runtime starts).
  std::string link = root_ + "/dumps-link";
  fs::create_directory_symlink(dir_, link);
  auto rel = ResolveDumpPath("core", link, false);
  ASSERT_THAT(rel, IsOk());
  EXPECT_EQ(rel->relative, "core");
  EXPECT_EQ(rel->path, dir_ + "/core");
  // Absolute, through the link as written or through what it resolves to.
  EXPECT_EQ(ResolveDumpPath(link + "/sub/core", link, false)->relative, "sub/core");
  EXPECT_EQ(ResolveDumpPath(dir_ + "/sub/core", link, false)->relative, "sub/core");
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
  ASSERT_THAT(WriteStringToFile(dir_ + "/core.old", "x"), IsOk());
  auto r = ResolveDumpPath("core.old", dir_, false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("exists"), std::string::npos);
  EXPECT_EQ(ResolveDumpPath("core.old", dir_, true)->path, dir_ + "/core.old");
  EXPECT_FALSE(ResolveDumpPath("sub", dir_, true).ok()) << "a directory is not a dump";
}

TEST_F(DumpPathTest, MissingDumpDirectoryIsAClearError) {
  auto r = ResolveDumpPath("core", root_ + "/nope", false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("CPPDIAG_DUMP_DIR"), std::string::npos);
}

}  // namespace
}  // namespace cppdiag::ipc
