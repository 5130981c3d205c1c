// The built cppdiag's exit path: a command whose output cannot be written
// (standard output on /dev/full) says so on stderr and exits non-zero, even
// when the command itself succeeded.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace {

struct Outcome {
  int status;
  std::string stderr_text;
};

// `cppdiag <args>` with standard output sent to `out`; returns its exit
// status and what it wrote on stderr.
Outcome Cppdiag(const std::string& args, const std::string& out) {
  std::string cmd = std::string(CPPDIAG_CLI_BINARY) + " " + args + " 2>&1 >" + out;
  FILE* f = ::popen(cmd.c_str(), "r");
  Outcome run{-1, {}};
  if (f == nullptr) return run;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) run.stderr_text.append(buf, n);
  const int status = ::pclose(f);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

TEST(CliMain, SuccessfulCommandThatCannotWriteItsOutputFails) {
  const std::string kNoSpace = "cppdiag: write standard output: No space left on device\n";
  // --version ends with std::endl: its flush fails first and leaves only the
  // stream's error flag, so the reason is not known at exit.
  const std::string kFlagOnly =
      "cppdiag: write standard output: failed, the output is incomplete\n";
  const struct {
    const char* args;
    const std::string& message;
  } kCases[] = {{"--help", kNoSpace}, {"dump --help", kNoSpace}, {"--version", kFlagOnly}};
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.args);
    Outcome ok = Cppdiag(c.args, "/dev/null");
    EXPECT_EQ(ok.status, 0);
    EXPECT_EQ(ok.stderr_text, "");

    Outcome full = Cppdiag(c.args, "/dev/full");
    EXPECT_EQ(full.status, 1);
    EXPECT_EQ(full.stderr_text, c.message);
  }
}

TEST(CliMain, NothingWrittenIsNoWriteError) {
  // A usage error prints on stderr only: stdout on /dev/full changes nothing.
  Outcome run = Cppdiag("--no-such-option", "/dev/full");
  EXPECT_EQ(run.status, 2);
  EXPECT_NE(run.stderr_text.find("cppdiag: "), std::string::npos);
  EXPECT_EQ(run.stderr_text.find("write standard output"), std::string::npos) << run.stderr_text;
}

}  // namespace
