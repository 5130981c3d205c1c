// Drawing on the terminal, for every command: whether a stream is one, a
// progress line rewritten in place (dump collect, auto-collect, counters
// collect), a block of lines redrawn in place (counters monitor), and the
// terminal modes that go with them, restored however a command ends.
// Nothing here is drawn on a stream that is not a terminal: pipes and
// files get only the commands' plain output.
//
//   ProgressLine progress;                   // stderr, if it is a terminal
//   progress.Show("  42%  12.0 / 28.6 MiB");
//   progress.Clear();                        // or Finish() to keep it
//
//   InPlaceBlock table(stdout);
//   ScopedHiddenCursor hidden(stdout);
//   table.Draw(lines);  ...  table.Draw(lines);
//
// Escape sequences are ECMA-48's (every terminal emulator in use); what is
// drawn must be escaped already (display.h's ForTerminal).
#pragma once

#include <termios.h>

#include <cstdio>
#include <string>
#include <vector>

namespace cppdiag::cli {

bool IsTerminal(FILE* stream);
// The terminal's height in rows, 0 when unknown (not a terminal).
size_t TerminalRows(FILE* stream);

// One line at the bottom of `out`, rewritten by each Show.
class ProgressLine {
 public:
  // Drawn only when `out` is a terminal.
  explicit ProgressLine(FILE* out = stderr) : ProgressLine(out, IsTerminal(out)) {}
  ProgressLine(FILE* out, bool active) : out_(out), active_(active) {}
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  bool active() const { return active_; }
  // Replaces the line with `text` (one line, no newline).
  void Show(const std::string& text);
  // Erases the line, for output that follows to start clean.
  void Clear();
  // Ends the line, which stays on the screen.
  void Finish();

 private:
  FILE* out_;
  bool active_;
  bool shown_ = false;
};

// The bytes that draw `lines` over the `drawn` lines drawn before them
// (0: none), on a terminal of `rows` rows (0: unknown): back to the block's
// first line, each line rewritten, what is left below cleared. The cursor
// cannot move above the screen, so a block taller than it is cut to
// rows - 1 lines, the last saying how many more there are. `*now_drawn`:
// how many lines the block now holds.
std::string RedrawInPlace(std::vector<std::string> lines, size_t drawn, size_t rows,
                          size_t* now_drawn);

// A block of lines redrawn in place on `out` (a terminal: see
// RedrawInPlace).
class InPlaceBlock {
 public:
  explicit InPlaceBlock(FILE* out) : out_(out) {}
  void Draw(const std::vector<std::string>& lines);

 private:
  FILE* out_;
  size_t drawn_ = 0;
};

// The terminal on `fd` in non-canonical mode without echo, so a key arrives
// at once; restored on destruction. Inactive when `fd` is not a terminal.
class ScopedRawTerminal {
 public:
  explicit ScopedRawTerminal(int fd);
  ~ScopedRawTerminal();
  ScopedRawTerminal(const ScopedRawTerminal&) = delete;
  ScopedRawTerminal& operator=(const ScopedRawTerminal&) = delete;
  bool active() const { return active_; }

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

// The cursor of `out` hidden while a block is redrawn, shown again however
// the redraw ends (an error or an exception included). Nothing when `out`
// is not a terminal.
class ScopedHiddenCursor {
 public:
  explicit ScopedHiddenCursor(FILE* out);
  ~ScopedHiddenCursor();
  ScopedHiddenCursor(const ScopedHiddenCursor&) = delete;
  ScopedHiddenCursor& operator=(const ScopedHiddenCursor&) = delete;

 private:
  FILE* out_;
  bool active_;
};

}  // namespace cppdiag::cli
