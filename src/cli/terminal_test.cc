#include "cli/terminal.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

namespace cppdiag::cli {
namespace {

// What a ProgressLine writes, through a memory stream.
class Captured {
 public:
  Captured() : file_(::open_memstream(&data_, &size_)) {}
  ~Captured() {
    std::fclose(file_);
    std::free(data_);
  }
  FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    return std::string(data_, size_);
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  FILE* file_;
};

TEST(ProgressLine, RewritesOneLineInPlace) {
  Captured out;
  ProgressLine line(out.file(), /*active=*/true);
  line.Show("  10%");
  line.Show("  20%");
  line.Clear();
  line.Clear();  // nothing shown: nothing to erase
  EXPECT_EQ(out.text(), "\r\x1b[2K  10%\r\x1b[2K  20%\r\x1b[2K");
  line.Show("3 sample(s)");
  line.Finish();
  line.Finish();
  EXPECT_EQ(out.text(), "\r\x1b[2K  10%\r\x1b[2K  20%\r\x1b[2K\r\x1b[2K3 sample(s)\n");
}

TEST(ProgressLine, DrawsNothingOffATerminal) {
  Captured out;
  ProgressLine line(out.file());  // a memory stream is no terminal
  EXPECT_FALSE(line.active());
  line.Show("  10%");
  line.Finish();
  line.Clear();
  EXPECT_EQ(out.text(), "");
  EXPECT_FALSE(IsTerminal(out.file()));
  EXPECT_EQ(TerminalRows(out.file()), 0u);
}

TEST(RedrawInPlace, GoesBackOverWhatItDrew) {
  size_t drawn = 0;
  EXPECT_EQ(RedrawInPlace({"a", "b"}, 0, 24, &drawn), "\x1b[2Ka\n\x1b[2Kb\n\x1b[J");
  EXPECT_EQ(drawn, 2u);
  EXPECT_EQ(RedrawInPlace({"c"}, drawn, 24, &drawn), "\x1b[2A\r\x1b[2Kc\n\x1b[J");
  EXPECT_EQ(drawn, 1u);
}

TEST(RedrawInPlace, CutsWhatTheScreenCannotHold) {
  std::vector<std::string> lines(10, "x");
  size_t drawn = 0;
  std::string out = RedrawInPlace(lines, 0, 6, &drawn);
  EXPECT_EQ(drawn, 5u) << "one row left for the cursor";
  EXPECT_NE(out.find("... 6 more (a taller terminal shows them)"), std::string::npos) << out;
  // Unknown height: all of it.
  RedrawInPlace(lines, 0, 0, &drawn);
  EXPECT_EQ(drawn, 10u);
}

}  // namespace
}  // namespace cppdiag::cli
