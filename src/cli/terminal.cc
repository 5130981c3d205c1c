#include "cli/terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

namespace cppdiag::cli {
namespace {

constexpr char kEraseLine[] = "\x1b[2K";     // EL 2: the whole line
constexpr char kEraseBelow[] = "\x1b[J";     // ED 0: from the cursor to the end
constexpr char kHideCursor[] = "\x1b[?25l";  // DECTCEM
constexpr char kShowCursor[] = "\x1b[?25h";

}  // namespace

bool IsTerminal(FILE* stream) { return ::isatty(::fileno(stream)) == 1; }

size_t TerminalRows(FILE* stream) {
  winsize ws{};
  if (::ioctl(::fileno(stream), TIOCGWINSZ, &ws) != 0) return 0;
  return ws.ws_row;
}

void ProgressLine::Show(const std::string& text) {
  if (!active_) return;
  std::fprintf(out_, "\r%s%s", kEraseLine, text.c_str());
  std::fflush(out_);
  shown_ = true;
}

void ProgressLine::Clear() {
  if (!shown_) return;
  std::fprintf(out_, "\r%s", kEraseLine);
  std::fflush(out_);
  shown_ = false;
}

void ProgressLine::Finish() {
  if (!shown_) return;
  std::fputc('\n', out_);
  std::fflush(out_);
  shown_ = false;
}

std::string RedrawInPlace(std::vector<std::string> lines, size_t drawn, size_t rows,
                          size_t* now_drawn) {
  if (rows > 3 && lines.size() > rows - 1) {
    size_t keep = rows - 2;
    size_t cut = lines.size() - keep;
    lines.resize(keep);
    lines.push_back("    ... " + std::to_string(cut) + " more (a taller terminal shows them)");
  }
  std::string out;
  if (drawn > 0) out += "\x1b[" + std::to_string(drawn) + "A\r";  // CUU: up to the first line
  for (const auto& l : lines) out += kEraseLine + l + "\n";
  out += kEraseBelow;
  *now_drawn = lines.size();
  return out;
}

void InPlaceBlock::Draw(const std::vector<std::string>& lines) {
  std::fputs(RedrawInPlace(lines, drawn_, TerminalRows(out_), &drawn_).c_str(), out_);
  std::fflush(out_);
}

ScopedRawTerminal::ScopedRawTerminal(int fd) : fd_(fd) {
  if (::isatty(fd_) != 1 || ::tcgetattr(fd_, &saved_) != 0) return;
  termios raw = saved_;
  raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
  raw.c_cc[VMIN] = 0;
  raw.c_cc[VTIME] = 0;
  active_ = ::tcsetattr(fd_, TCSANOW, &raw) == 0;
}

ScopedRawTerminal::~ScopedRawTerminal() {
  if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
}

ScopedHiddenCursor::ScopedHiddenCursor(FILE* out) : out_(out), active_(IsTerminal(out)) {
  if (active_) std::fputs(kHideCursor, out_);
}

ScopedHiddenCursor::~ScopedHiddenCursor() {
  if (active_) {
    std::fputs(kShowCursor, out_);
    std::fflush(out_);
  }
}

}  // namespace cppdiag::cli
