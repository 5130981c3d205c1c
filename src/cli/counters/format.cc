#include "cli/counters/format.h"

#include <fmt/format.h>
#include <time.h>

#include <cmath>

#include "common/parse.h"

namespace cppdiag::counters {
namespace {

std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Result<OutputFormat> ParseOutputFormat(std::string_view text) {
  if (text == "csv") return OutputFormat::kCsv;
  if (text == "json") return OutputFormat::kJson;
  if (text == "jsonl") return OutputFormat::kJsonLines;
  return Error::Invalid("unknown format \"" + std::string(text) +
                        "\" (expected csv, json or jsonl)");
}

std::string FormatTimestamp(int64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1000000000);
  int64_t ms = (unix_ns % 1000000000) / 1000000;
  struct tm tm {};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

std::string FormatNumber(double value) {
  if (!std::isfinite(value)) return "";
  if (value == std::floor(value) && std::fabs(value) < 9.0e15) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  std::string s = fmt::format("{:.3f}", value);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string FormatHuman(CounterUnit unit, double value) {
  auto bytes = [](double v) {
    return FormatBytes(static_cast<uint64_t>(std::llround(std::max(v, 0.0))));
  };
  switch (unit) {
    case CounterUnit::kBytes:
      return bytes(value);
    case CounterUnit::kBytesPerSecond:
      return bytes(value) + "/s";
    case CounterUnit::kPercent:
      return fmt::format("{:.1f} %", value);
    case CounterUnit::kCores:
      return fmt::format("{:.2f} cores", value);
    case CounterUnit::kSeconds:
      return fmt::format("{:.2f} s", value);
    case CounterUnit::kCount:
      return FormatNumber(value);
  }
  return FormatNumber(value);
}

std::string CsvHeader() {
  std::string out = "timestamp,elapsed_seconds";
  for (const CounterInfo& c : Catalog()) out += "," + CsvField(c.name);
  return out;
}

std::string CsvRow(const Sample& sample, double elapsed_seconds) {
  std::string out = FormatTimestamp(sample.unix_ns) + "," + FormatNumber(elapsed_seconds);
  for (const CounterInfo& c : Catalog()) {
    out += ',';
    if (auto v = sample.Get(c.name)) out += FormatNumber(*v);
  }
  return out;
}

std::string JsonRow(const Sample& sample, double elapsed_seconds) {
  nlohmann::ordered_json row;
  row["timestamp"] = FormatTimestamp(sample.unix_ns);
  row["elapsed_seconds"] = elapsed_seconds;
  for (const CounterInfo& c : Catalog()) {
    auto v = sample.Get(c.name);
    if (!v || !std::isfinite(*v)) continue;
    if (*v == std::floor(*v) && std::fabs(*v) < 9.0e15) {
      row[c.name] = static_cast<int64_t>(*v);
    } else {
      row[c.name] = *v;
    }
  }
  return row.dump();
}

std::string RowWriter::Begin() const {
  switch (format_) {
    case OutputFormat::kCsv:
      return CsvHeader() + "\n";
    case OutputFormat::kJson:
      return "[";
    case OutputFormat::kJsonLines:
      return "";
  }
  return "";
}

std::string RowWriter::Row(const Sample& sample, double elapsed_seconds) {
  bool first = rows_++ == 0;
  switch (format_) {
    case OutputFormat::kCsv:
      return CsvRow(sample, elapsed_seconds) + "\n";
    case OutputFormat::kJson:
      // The separator ends the previous line: every object has a line of its own.
      return (first ? "\n  " : ",\n  ") + JsonRow(sample, elapsed_seconds);
    case OutputFormat::kJsonLines:
      return JsonRow(sample, elapsed_seconds) + "\n";
  }
  return "";
}

std::string RowWriter::End() const { return format_ == OutputFormat::kJson ? "\n]\n" : ""; }

std::vector<std::string> TableLines(const Sample& sample) {
  std::vector<std::string> lines;
  for (const CounterInfo& c : Catalog()) {
    auto v = sample.Get(c.name);
    if (!v) continue;
    lines.push_back(fmt::format("    {:<32}{:>18}", c.title, FormatHuman(c.unit, *v)));
  }
  return lines;
}

}  // namespace cppdiag::counters
