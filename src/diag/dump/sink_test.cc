#include "diag/dump/sink.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "common/io.h"
#include "common/scoped_fd.h"
#include "support/status_matchers.h"

namespace cppdiag::dump {
namespace {

using ::cppdiag::testing::IsOk;

class TempFile {
 public:
  TempFile() {
    char tmpl[] = "/tmp/cppdiag-sink-XXXXXX";
    fd_.reset(::mkstemp(tmpl));
    path_ = tmpl;
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  ScopedFd fd_;
  std::string path_;
};

TEST(SinkTest, MemorySinkStoresSkipsAndFinishes) {
  MemorySink s;
  ASSERT_EQ(s.Write("ab", 2), 0);
  ASSERT_EQ(s.Skip(3), 0);
  ASSERT_EQ(s.Write("c", 1), 0);
  EXPECT_EQ(s.offset(), 6u);
  ASSERT_EQ(s.Finish(10), 0);
  EXPECT_EQ(s.data(), (std::vector<uint8_t>{'a', 'b', 0, 0, 0, 'c', 0, 0, 0, 0}));
  EXPECT_EQ(s.skipped_bytes(), 3u);
  EXPECT_EQ(s.written_bytes(), 3u);
}

TEST(SinkTest, MemorySinkLimitGivesEnospc) {
  MemorySink s(4);
  EXPECT_EQ(s.Write("abc", 3), 0);
  EXPECT_EQ(s.Write("de", 2), ENOSPC);
}

TEST(SinkTest, FileSinkWritesBufferedAndDirectWithHoles) {
  TempFile t;
  std::vector<uint8_t> buffer(4096);
  FileSink s(t.fd(), buffer.data(), buffer.size(), /*writeback_bytes=*/64 << 10);
  std::string expected;
  for (int i = 0; i < 100; ++i) {  // small writes through the buffer
    std::string piece = "piece-" + std::to_string(i) + ";";
    ASSERT_EQ(s.Write(piece.data(), piece.size()), 0);
    expected += piece;
  }
  ASSERT_EQ(s.Skip(1 << 20), 0);  // a 1 MiB hole
  expected.append(1 << 20, '\0');
  std::string big(300000, 'x');  // straight to the file
  ASSERT_EQ(s.Write(big.data(), big.size()), 0);
  expected += big;
  ASSERT_EQ(s.Finish(expected.size() + (2 << 20)), 0);  // ends in a hole
  expected.append(2 << 20, '\0');
  EXPECT_EQ(s.offset(), expected.size());

  auto content = ReadFileToString(t.path(), 64 << 20);
  ASSERT_THAT(content, IsOk());
  EXPECT_EQ(*content == expected, true);
  struct stat st;
  ASSERT_EQ(::fstat(t.fd(), &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), expected.size());
  // Holes take no blocks (on file systems with sparse files, as /tmp's).
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, expected.size() / 2);
}

TEST(SinkTest, FileSinkReportsEnospc) {
  ScopedFd full(::open("/dev/full", O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(full.is_valid());
  std::vector<uint8_t> buffer(4096);
  FileSink s(full.get(), buffer.data(), buffer.size());
  EXPECT_EQ(s.Write("abc", 3), 0);  // buffered
  EXPECT_EQ(s.Finish(3), ENOSPC);
  EXPECT_STREQ(s.failed_call(), "pwrite");
}

}  // namespace
}  // namespace cppdiag::dump
