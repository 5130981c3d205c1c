#include "support/scoped_temp_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <utility>

namespace cppdiag::testing {
namespace {

bool IsDir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

TEST(ScopedTempDirTest, CreatesAPrivateDirectoryAndRemovesItWithItsContent) {
  std::string path;
  {
    ScopedTempDir dir("cppdiag-tmpdir-test");
    path = dir.path();
    ASSERT_TRUE(IsDir(path)) << path;
    EXPECT_EQ(path.rfind("/tmp/cppdiag-tmpdir-test-", 0), 0u) << path;
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    std::filesystem::create_directories(dir.Join("a/b"));
    std::ofstream(dir.Join("a/b/file")) << "x";
    ASSERT_TRUE(std::filesystem::exists(dir.Join("a/b/file")));
  }
  EXPECT_FALSE(std::filesystem::exists(path)) << path;
}

TEST(ScopedTempDirTest, TwoDirectoriesDiffer) {
  ScopedTempDir a, b;
  EXPECT_NE(a.path(), b.path());
  EXPECT_TRUE(IsDir(a.path()));
  EXPECT_TRUE(IsDir(b.path()));
}

TEST(ScopedTempDirTest, JoinAddsOneSlash) {
  ScopedTempDir dir;
  EXPECT_EQ(dir.Join("x"), dir.path() + "/x");
  EXPECT_NE(dir.path().back(), '/');
}

TEST(ScopedTempDirTest, BaseChoosesWhereItLives) {
  ScopedTempDir base;
  ScopedTempDir inner("in", base.path());
  EXPECT_EQ(inner.path().rfind(base.path() + "/in-", 0), 0u) << inner.path();
  EXPECT_TRUE(IsDir(inner.path()));
}

TEST(ScopedTempDirTest, MoveTransfersOwnership) {
  ScopedTempDir a;
  std::string path = a.path();
  ScopedTempDir b = std::move(a);
  EXPECT_TRUE(a.path().empty());  // NOLINT(bugprone-use-after-move): moved-from state is defined
  EXPECT_EQ(b.path(), path);
  ScopedTempDir c;
  std::string c_path = c.path();
  c = std::move(b);
  EXPECT_FALSE(std::filesystem::exists(c_path)) << "the overwritten directory is removed";
  EXPECT_EQ(c.path(), path);
  EXPECT_TRUE(IsDir(path));
}

TEST(ScopedTempDirTest, ReleaseKeepsTheDirectory) {
  std::string path;
  {
    ScopedTempDir dir;
    path = dir.Release();
    EXPECT_TRUE(dir.path().empty());
  }
  EXPECT_TRUE(IsDir(path));
  std::filesystem::remove_all(path);
}

TEST(ScopedTempDirTest, ThrowsWhenTheBaseDoesNotExist) {
  EXPECT_THROW(ScopedTempDir("x", "/nonexistent/cppdiag"), std::runtime_error);
}

}  // namespace
}  // namespace cppdiag::testing
