// What the counters integration tests share: CSV parsing, counting, and
// the fixture (a fresh directory for the files `counters collect` writes).
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "support/scoped_temp_dir.h"

namespace cppdiag::testing {

constexpr uint64_t kMiB = 1 << 20;

// RFC 4180 fields of one line (quoted fields, doubled quotes).
std::vector<std::string> SplitCsv(const std::string& line);

// A CSV file as rows of column name → value (absent when the cell is empty).
struct Csv {
  std::vector<std::string> header;
  std::vector<std::map<std::string, double>> rows;
};
Csv ParseCsv(const std::string& text);

// How many times `needle` occurs in `haystack` (overlapping).
size_t Count(const std::string& haystack, const std::string& needle);

// Threads of `pid` now (0 if it cannot be read).
size_t TaskCount(pid_t pid);

class CountersTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) { return dir_.Join(name); }

  ScopedTempDir dir_{"cppdiag-counters"};
};

}  // namespace cppdiag::testing
