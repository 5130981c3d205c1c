// The heap markers the dump tests look for: "CPPDIAG-MARKER-" and 16 hex
// digits derived from a seed. Targets build one straight into a heap buffer
// (so no whole copy exists on a stack or in argv); tests make the string to
// search dumps for.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace cppdiag::dump_test {

// Writes the marker and a NUL into `out` (32 bytes).
inline void WriteMarker(uint64_t seed, char* out) {
  static const char kHex[] = "0123456789abcdef";
  const char kPrefix[] = {'C', 'P', 'P', 'D', 'I', 'A', 'G', '-',
                          'M', 'A', 'R', 'K', 'E', 'R', '-'};
  uint64_t v = seed * 0x9E3779B97F4A7C15ULL;
  std::memcpy(out, kPrefix, sizeof kPrefix);
  for (int i = 0; i < 16; ++i) out[sizeof kPrefix + i] = kHex[(v >> (60 - 4 * i)) & 0xf];
  out[sizeof kPrefix + 16] = '\0';
}

inline std::string Marker(uint64_t seed) {
  char buf[32];
  WriteMarker(seed, buf);
  return buf;
}

}  // namespace cppdiag::dump_test
