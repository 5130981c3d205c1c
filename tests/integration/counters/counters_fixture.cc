#include "integration/counters/counters_fixture.h"

#include <sstream>

#include "common/proc.h"

namespace cppdiag::testing {

std::vector<std::string> SplitCsv(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      out.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

Csv ParseCsv(const std::string& text) {
  Csv csv;
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line)) return csv;
  csv.header = SplitCsv(line);
  while (std::getline(in, line)) {
    auto fields = SplitCsv(line);
    EXPECT_EQ(fields.size(), csv.header.size()) << line;
    std::map<std::string, double> row;
    for (size_t i = 1; i < fields.size() && i < csv.header.size(); ++i) {
      if (!fields[i].empty()) row[csv.header[i]] = std::stod(fields[i]);
    }
    csv.rows.push_back(std::move(row));
  }
  return csv;
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

size_t TaskCount(pid_t pid) {
  auto tids = ListThreads(pid);
  return tids ? tids->size() : 0;
}

}  // namespace cppdiag::testing
