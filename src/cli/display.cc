#include "cli/display.h"

#include <cstdint>
#include <cstdio>

namespace cppdiag::cli {
namespace {

// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no
// overlong forms, no surrogates, nothing past U+10FFFF), 0 if there is none;
// its code point in *cp.
size_t Utf8Sequence(std::string_view s, size_t i, uint32_t* cp) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t b = byte(i);
  size_t n;
  uint32_t min;
  if (b < 0x80) {
    *cp = b;
    return 1;
  } else if ((b & 0xe0) == 0xc0) {
    n = 2, *cp = b & 0x1fu, min = 0x80;
  } else if ((b & 0xf0) == 0xe0) {
    n = 3, *cp = b & 0x0fu, min = 0x800;
  } else if ((b & 0xf8) == 0xf0) {
    n = 4, *cp = b & 0x07u, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() - i < n) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    *cp = (*cp << 6) | (byte(i + k) & 0x3fu);
  }
  if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff)) return 0;
  return n;
}

// Code points past the controls that change how the rest of a line shows:
// bidirectional marks, embeddings, overrides and isolates, and the line and
// paragraph separators.
bool IsFormatControl(uint32_t cp) {
  return (cp >= 0x200e && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

std::string Hex(std::string_view bytes) {
  std::string out;
  for (char b : bytes) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<uint8_t>(b));
    out += buf;
  }
  return out;
}

// How one UTF-8 sequence, or one byte that starts none (`valid` false),
// shows escaped (bash's $'...' spells \u{NNNN} \uNNNN); empty: as it is.
// The backslash is the callers'.
std::string EscapedForm(std::string_view seq, bool valid, uint32_t cp, bool dollar_quotes) {
  if (!valid) return Hex(seq);
  if (cp == '\t') return "\\t";
  if (cp == '\n') return "\\n";
  if (cp == '\r') return "\\r";
  // C0, DEL and C1 (U+009B is CSI on some terminals), byte by byte.
  if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) return Hex(seq);
  if (IsFormatControl(cp)) {
    char buf[16];
    std::snprintf(buf, sizeof buf, dollar_quotes ? "\\u%04x" : "\\u{%04x}",
                  static_cast<unsigned>(cp));
    return buf;
  }
  return {};
}

// Calls `each(seq, escaped)` for each sequence of `s` in turn.
template <typename Each>
void ForEachSequence(std::string_view s, bool dollar_quotes, Each each) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    size_t n = Utf8Sequence(s, i, &cp);
    std::string_view seq = s.substr(i, n == 0 ? 1 : n);
    each(seq, EscapedForm(seq, n != 0, cp, dollar_quotes));
    i += seq.size();
  }
}

bool IsPlainWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("_./:@%+,=-").find(c) != std::string_view::npos;
}

}  // namespace

std::string ForTerminal(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  ForEachSequence(s, false, [&](std::string_view seq, const std::string& escaped) {
    if (seq == "\\") {
      out += "\\\\";
    } else {
      out += escaped.empty() ? std::string(seq) : escaped;
    }
  });
  return out;
}

std::string ShellWord(std::string_view s) {
  bool plain = !s.empty();
  bool printable = true;
  for (char c : s) plain = plain && IsPlainWordChar(c);
  if (plain) return std::string(s);
  ForEachSequence(s, true, [&](std::string_view, const std::string& escaped) {
    printable = printable && escaped.empty();
  });
  std::string out;
  if (printable) {
    out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  }
  out = "$'";
  ForEachSequence(s, true, [&](std::string_view seq, const std::string& escaped) {
    if (seq == "\\" || seq == "'") {
      out += "\\" + std::string(seq);
    } else {
      out += escaped.empty() ? std::string(seq) : escaped;
    }
  });
  return out + "'";
}

}  // namespace cppdiag::cli
