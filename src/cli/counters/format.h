// How the CLI writes counters: the rows of `cppdiag counters collect` (CSV,
// a JSON array, or JSON lines) and the table of `counters monitor`.
//
// Collected rows have one column per catalog counter, in catalog order, after
// "timestamp" (ISO 8601 UTC, the target's clock) and "elapsed_seconds" (since
// the first row, the target's monotonic clock). A counter the target did not
// report is an empty CSV cell, and is left out of a JSON object.
//
//   RowWriter w(OutputFormat::kCsv);
//   out << w.Begin();             // the header row
//   out << w.Row(sample, 0.25);   // one complete line per sample
//   out << w.End();
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "diag/counters/catalog.h"
#include "diag/counters/sample.h"

namespace cppdiag::counters {

enum class OutputFormat {
  kCsv,        // a header row, then one row per sample
  kJson,       // one array; each object on its own line
  kJsonLines,  // one object per line (https://jsonlines.org)
};

// "csv", "json", "jsonl".
Result<OutputFormat> ParseOutputFormat(std::string_view text);

class RowWriter {
 public:
  explicit RowWriter(OutputFormat format) : format_(format) {}
  // What goes before the first row: the CSV header, JSON's "[".
  std::string Begin() const;
  // One sample, a whole line of its own: a file cut after any Row holds
  // whole rows (a JSON array then lacks only its closing "\n]").
  std::string Row(const Sample& sample, double elapsed_seconds);
  // What closes the file: JSON's "]".
  std::string End() const;

 private:
  OutputFormat format_;
  size_t rows_ = 0;
};

// The CSV header and one CSV row (no newline), RFC 4180 quoting.
std::string CsvHeader();
std::string CsvRow(const Sample& sample, double elapsed_seconds);
// One JSON object on one line (no newline).
std::string JsonRow(const Sample& sample, double elapsed_seconds);

// "2026-11-23T20:31:02.250Z".
std::string FormatTimestamp(int64_t unix_ns);
// A number as collect writes it: integral values as integers, others with
// up to 3 decimals, trailing zeros dropped.
std::string FormatNumber(double value);
// For people: "123.4 MiB", "12.5 %", "0.50 cores", "3.21 s", "17", "1.0 MiB/s".
std::string FormatHuman(CounterUnit unit, double value);

// The monitor's table: one line per counter the sample has, in catalog
// order, "    <title>   <value>" with values aligned; no newlines.
std::vector<std::string> TableLines(const Sample& sample);

}  // namespace cppdiag::counters
