#include "diag/dump/dump_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/io.h"
#include "diag/dump/self_dump.h"
#include "diag/dump/testing/core_file_reader.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"

namespace cppdiag::dump {
namespace {

using ::cppdiag::testing::IsOk;

using ::cppdiag::testing::ScopedTempDir;

namespace fs = std::filesystem;

struct Fallbacks {
  bool no_tmpfile;
  bool no_openat2;
  const char* name;
};
void PrintTo(const Fallbacks& f, std::ostream* os) { *os << f.name; }

class DumpFileTest : public ::testing::TestWithParam<Fallbacks> {
 protected:
  void SetUp() override {
    dir_ = root_ + "/dumps";
    fs::create_directories(dir_ + "/sub");
    fs::create_directories(root_ + "/outside");
    base_.reset(::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(base_.is_valid());
    SetDumpFileFallbacksForTesting(GetParam().no_tmpfile, GetParam().no_openat2);
    reserve_.Fill();
  }
  void TearDown() override {
    SetDumpFileFallbacksForTesting(false, false);
    reserve_.CloseAll();
  }
  static std::vector<std::string> Files(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }
  // Creates `rel` beneath the dump directory with `content`, and names it.
  int Write(const char* rel, const std::string& content, bool numbered, bool replace, char* path,
            size_t path_size, const char** failed) {
    DumpFile f;
    if (int err = OpenDumpDirectory(base_.get(), rel, &reserve_, &f)) return err;
    if (int err = CreateDumpFile(&reserve_, &f)) {
      DiscardDumpFile(&f);
      return err;
    }
    EXPECT_EQ(WriteAllRaw(f.fd.load(), content.data(), content.size()), 0);
    int err = PublishDumpFile(&f, numbered, replace, path, path_size, failed);
    DiscardDumpFile(&f);
    return err;
  }

  ScopedTempDir tmp_{"cppdiag-dumpfile"};
  std::string root_ = tmp_.path(), dir_;
  ScopedFd base_;
  DescriptorReserve reserve_;
};

TEST_P(DumpFileTest, NothingIsVisibleUntilItIsNamedThenOnlyTheName) {
  mode_t old_umask = ::umask(0);  // the mode is 0600 whatever the umask
  DumpFile f;
  ASSERT_EQ(OpenDumpDirectory(base_.get(), "sub/core", &reserve_, &f), 0);
  ASSERT_EQ(CreateDumpFile(&reserve_, &f), 0);
  ::umask(old_umask);
  ASSERT_EQ(WriteAllRaw(f.fd.load(), "core", 4), 0);
  if (GetParam().no_tmpfile) {
    // The fallback's known limit: its temporary name shows while it is written.
    EXPECT_EQ(Files(dir_ + "/sub"),
              std::vector<std::string>{std::string("core.tmp-") + std::to_string(::getpid())});
  } else {
    EXPECT_EQ(Files(dir_ + "/sub"), std::vector<std::string>{});
  }
  char path[PATH_MAX] = "sub/core";
  const char* failed = "";
  ASSERT_EQ(PublishDumpFile(&f, false, false, path, sizeof path, &failed), 0) << failed;
  EXPECT_EQ(f.fd.load(), -1) << "closed by PublishDumpFile";
  SyncDumpDirectory(f);
  DiscardDumpFile(&f);
  EXPECT_EQ(Files(dir_ + "/sub"), std::vector<std::string>{"core"});
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/sub/core").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 4);
}

TEST_P(DumpFileTest, ATakenNameIsNeverReplacedUnlessAsked) {
  char path[PATH_MAX] = "core";
  const char* failed = "";
  ASSERT_EQ(Write("core", "first", false, false, path, sizeof path, &failed), 0) << failed;
  EXPECT_EQ(Write("core", "second", false, false, path, sizeof path, &failed), EEXIST);
  EXPECT_EQ(*ReadFileToString(dir_ + "/core"), "first");
  // From a template: the next free ".N".
  ASSERT_EQ(Write("core", "third", true, false, path, sizeof path, &failed), 0) << failed;
  EXPECT_STREQ(path, "core.1");
  ASSERT_EQ(Write("core", "fourth", false, true, path, sizeof path, &failed), 0) << failed;
  EXPECT_EQ(*ReadFileToString(dir_ + "/core"), "fourth");
  EXPECT_EQ(Files(dir_), (std::vector<std::string>{"core", "core.1", "sub"}))
      << "no temporary file left";
  // A symlink planted at the name is not followed, even when replacing.
  fs::create_symlink(root_ + "/outside/victim", dir_ + "/planted");
  EXPECT_EQ(Write("planted", "x", false, false, path, sizeof path, &failed), EEXIST);
  EXPECT_EQ(Files(root_ + "/outside"), std::vector<std::string>{});
}

TEST_P(DumpFileTest, BeneathTheDirectoryNoSymlinkAndNoEscape) {
  fs::create_directory_symlink(root_ + "/outside", dir_ + "/out-link");
  fs::create_directory_symlink(dir_ + "/sub", dir_ + "/in-link");
  DumpFile f;
  EXPECT_EQ(OpenDumpDirectory(base_.get(), "out-link/core", &reserve_, &f), ELOOP);
  EXPECT_EQ(OpenDumpDirectory(base_.get(), "in-link/core", &reserve_, &f), ELOOP);
  EXPECT_EQ(OpenDumpDirectory(base_.get(), "sub/../../outside/core", &reserve_, &f), EXDEV);
  EXPECT_EQ(OpenDumpDirectory(base_.get(), (root_ + "/outside/core").c_str(), &reserve_, &f),
            EINVAL);
  EXPECT_EQ(OpenDumpDirectory(base_.get(), "sub/..", &reserve_, &f), EINVAL);
  EXPECT_EQ(OpenDumpDirectory(base_.get(), "nosuch/core", &reserve_, &f), ENOENT);
  EXPECT_EQ(f.dir_fd.load(), -1);
  ASSERT_EQ(OpenDumpDirectory(base_.get(), "./sub//core", &reserve_, &f), 0);
  EXPECT_STREQ(f.name, "core");
  f.CloseDescriptors();
  // By path (the crash handler's template): the operator's symlinks are followed.
  ASSERT_EQ(OpenDumpDirectory(-1, (dir_ + "/in-link/core").c_str(), &reserve_, &f), 0);
  f.CloseDescriptors();
  EXPECT_EQ(Files(root_ + "/outside"), std::vector<std::string>{});
}

// The whole self-dump on the fallback: the dump is complete and nothing else
// is left.
TEST_P(DumpFileTest, ASelfDumpIsWrittenAndNamed) {
  SelfDumpConfig c;
  c.default_type = DumpType::kMini;
  c.name_template = dir_ + "/core.%p";
  c.dump_dir = dir_;
  ASSERT_THAT(PrepareSelfDump(c), IsOk());
  for (SelfDumpMode mode : {SelfDumpMode::kSuspend, SelfDumpMode::kFork}) {
    SelfDumpRequest req;
    std::string rel = std::string("sub/core.") + SelfDumpModeName(mode);
    req.path = rel.c_str();
    req.in_dump_dir = true;
    req.mode = mode;
    SelfDumpResult res;
    ASSERT_EQ(WriteSelfDump(req, &res), 0) << res.failed_call;
    EXPECT_EQ(std::string(res.path), dir_ + "/" + rel);
    EXPECT_THAT(testing::ParseCoreFile(res.path), IsOk());
  }
  EXPECT_EQ(Files(dir_ + "/sub"), (std::vector<std::string>{"core.fork", "core.suspended"}));
  SelfDumpRequest up;
  up.path = "out-link/core";
  up.in_dump_dir = true;
  fs::create_directory_symlink(root_ + "/outside", dir_ + "/out-link");
  SelfDumpResult res;
  EXPECT_EQ(WriteSelfDump(up, &res), ELOOP);
  EXPECT_EQ(Files(root_ + "/outside"), std::vector<std::string>{});
}

INSTANTIATE_TEST_SUITE_P(Paths, DumpFileTest,
                         ::testing::Values(Fallbacks{false, false, "TmpfileOpenat2"},
                                           Fallbacks{true, false, "NamedTemporary"},
                                           Fallbacks{false, true, "ComponentWalk"}),
                         [](const ::testing::TestParamInfo<Fallbacks>& p) {
                           return std::string(p.param.name);
                         });

}  // namespace
}  // namespace cppdiag::dump
