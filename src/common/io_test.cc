#include "common/io.h"
#include "support/status_matchers.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <thread>

namespace cppdiag {
namespace {

using ::cppdiag::testing::IsOk;

TEST(Io, ReadFileReportsTheCallAndPath) {
  auto r = ReadFileToString("/nonexistent/cppdiag");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ENOENT);
  EXPECT_EQ(r.error().message(), "open /nonexistent/cppdiag: No such file or directory");
}

TEST(Io, ReadsProcFilesWhoseSizeIsZero) {
  auto r = ReadFileToString("/proc/self/status");
  ASSERT_THAT(r, IsOk());
  EXPECT_NE(r->find("VmRSS"), std::string::npos);
}

TEST(Io, WriteAllAndReadExactlyMoveLargeBuffersThroughASocket) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ScopedFd a(sv[0]), b(sv[1]);
  std::string out(1 << 20, 'x');
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(i * 7);
  std::thread writer([&] { ASSERT_THAT(WriteAll(a.get(), out.data(), out.size()), IsOk()); });
  std::string in(out.size(), '\0');
  ASSERT_THAT(ReadExactly(b.get(), in.data(), in.size()), IsOk());
  writer.join();
  EXPECT_EQ(in, out);
  a.reset();
  char c;
  EXPECT_EQ(ReadExactlyRaw(b.get(), &c, 1), EPIPE);
}

TEST(ScopedFd, MovesOwnershipAndCloses) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ScopedFd r(fds[0]);
  {
    ScopedFd w(fds[1]);
    ScopedFd moved = std::move(w);
    EXPECT_FALSE(w.is_valid());
    EXPECT_EQ(moved.get(), fds[1]);
  }
  char c;
  EXPECT_EQ(::read(r.get(), &c, 1), 0);  // writer closed: EOF
}

}  // namespace
}  // namespace cppdiag
