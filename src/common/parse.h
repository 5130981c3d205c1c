// Parsing of the sizes, percentages and durations users type in variables and
// flags. Every parser rejects trailing garbage and says what it expected.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace cppdiag {

// "1048576", "512K", "512KB", "512KiB", "64M", "1.5G", "2T" (binary units,
// case-insensitive). Fails on negatives, overflow and unknown suffixes.
Result<uint64_t> ParseSize(std::string_view text);

// "10s", "500ms", "2m", "1h", "250us"; a bare number means seconds.
Result<std::chrono::nanoseconds> ParseDuration(std::string_view text);

// A size or a percentage of something known later (a cgroup limit).
struct SizeOrPercent {
  bool is_percent = false;
  uint64_t bytes = 0;    // when !is_percent
  double percent = 0.0;  // when is_percent, in (0, 100]

  // Bytes, with a percentage taken of `whole`.
  uint64_t Resolve(uint64_t whole) const {
    return is_percent ? static_cast<uint64_t>(static_cast<double>(whole) * percent / 100.0) : bytes;
  }
};

// "75%" or anything ParseSize takes.
Result<SizeOrPercent> ParseSizeOrPercent(std::string_view text);

// "85" or "85%": a percentage in (0, 100].
Result<double> ParsePercent(std::string_view text);

// A base-10 integer in [min, max], the whole of `text`.
Result<int64_t> ParseInt(std::string_view text, int64_t min, int64_t max);

// "512.0 MiB", "3.2 GiB", "17 B": for people, not for parsing back.
std::string FormatBytes(uint64_t bytes);

}  // namespace cppdiag
