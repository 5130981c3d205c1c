#include "cli/display.h"

#include <gtest/gtest.h>

#include "support/subprocess.h"

namespace cppdiag::cli {
namespace {

constexpr const char* kHostile = "\x1b]0;pwned\x07$(touch /tmp/x)";

TEST(ForTerminal, LeavesPrintableTextAndUtf8AsTheyAre) {
  EXPECT_EQ(ForTerminal("leakapp --port 8080"), "leakapp --port 8080");
  EXPECT_EQ(ForTerminal("caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x90\x9b"),
            "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x90\x9b");
}

TEST(ForTerminal, EscapesControlsEscAndBell) {
  EXPECT_EQ(ForTerminal(kHostile), "\\x1b]0;pwned\\x07$(touch /tmp/x)");
  EXPECT_EQ(ForTerminal("a\tb\nc\rd\x7f"), "a\\tb\\nc\\rd\\x7f");
  EXPECT_EQ(ForTerminal(std::string_view("nul\0x", 5)), "nul\\x00x");
}

TEST(ForTerminal, EscapesBytesThatAreNotUtf8ByteByByte) {
  EXPECT_EQ(ForTerminal("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(ForTerminal("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(ForTerminal("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_EQ(ForTerminal("cut \xe2\x86"), "cut \\xe2\\x86");   // truncated
}

TEST(ForTerminal, EscapesC1ControlsAndBidiOverrides) {
  EXPECT_EQ(ForTerminal("\xc2\x9b"
                        "2J"),
            "\\xc2\\x9b2J");  // U+009B: CSI
  EXPECT_EQ(ForTerminal("evil\xe2\x80\xaetxt.exe"), "evil\\u{202e}txt.exe");
}

TEST(ForTerminal, DoublesABackslashSoEscapesCannotBeForged) {
  EXPECT_EQ(ForTerminal("\\x1b"), "\\\\x1b");
}

TEST(ShellWord, LeavesPlainWordsUnquoted) {
  EXPECT_EQ(ShellWord("/dumps/core.leakapp.7.1732400000"), "/dumps/core.leakapp.7.1732400000");
  EXPECT_EQ(ShellWord("team-a/leakapp-5c7b:x@y%z+w,v=1"), "team-a/leakapp-5c7b:x@y%z+w,v=1");
}

TEST(ShellWord, SingleQuotesWhatAShellWouldInterpret) {
  EXPECT_EQ(ShellWord(""), "''");
  EXPECT_EQ(ShellWord("a b"), "'a b'");
  EXPECT_EQ(ShellWord("$(touch /tmp/x)"), "'$(touch /tmp/x)'");
  EXPECT_EQ(ShellWord("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellWord("<namespace>"), "'<namespace>'");
}

TEST(ShellWord, UsesDollarQuotesForWhatATerminalWouldInterpret) {
  EXPECT_EQ(ShellWord(kHostile), "$'\\x1b]0;pwned\\x07$(touch /tmp/x)'");
  EXPECT_EQ(ShellWord("a'\\\n"), "$'a\\'\\\\\\n'");
}

// What bash makes of a word: the word itself, and nothing run.
TEST(ShellWord, BashReadsEveryWordBackAsItWas) {
  const std::string marker = ::testing::TempDir() + "shell-word-ran";
  std::remove(marker.c_str());
  for (std::string s :
       {std::string(kHostile), "$(touch " + marker + ")", "`touch " + marker + "`; touch " + marker,
        std::string("it's \"quoted\" \\ $HOME"), std::string("\xff\xfe tab\there \xe2\x80\xae"),
        std::string("-n"), std::string("")}) {
    std::string out = cppdiag::testing::RunToCompletion(
        {"/bin/bash", "-c", "printf '%s' " + ShellWord(s)}, std::chrono::seconds(30));
    EXPECT_EQ(out, s) << ShellWord(s);
  }
  EXPECT_NE(::access(marker.c_str(), F_OK), 0) << "a quoted word ran a command";
}

}  // namespace
}  // namespace cppdiag::cli
