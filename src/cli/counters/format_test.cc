#include "cli/counters/format.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace cppdiag::counters {
namespace {

// Splits one CSV line per RFC 4180 (quoted fields, doubled quotes).
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

Sample Example() {
  Sample s;
  s.pid = 42;
  s.unix_ns = 1795465862250000000;  // 2026-11-23T20:31:02.250Z
  s.values = {
      {names::kRss, 10485760}, {names::kCpuCorePercent, 12.3456}, {names::kMinorFaults, 17}};
  return s;
}

TEST(Format, TimestampsAndNumbers) {
  EXPECT_EQ(FormatTimestamp(1795465862250000000), "2026-11-23T20:31:02.250Z");
  EXPECT_EQ(FormatNumber(10485760), "10485760");
  EXPECT_EQ(FormatNumber(12.3456), "12.346");
  EXPECT_EQ(FormatNumber(0.5), "0.5");
  EXPECT_EQ(FormatHuman(CounterUnit::kBytes, 10485760), "10.0 MiB");
  EXPECT_EQ(FormatHuman(CounterUnit::kPercent, 12.3456), "12.3 %");
  EXPECT_EQ(FormatHuman(CounterUnit::kCores, 0.5), "0.50 cores");
  EXPECT_EQ(FormatHuman(CounterUnit::kBytesPerSecond, 2097152), "2.0 MiB/s");
}

TEST(Format, CsvHasOneColumnPerCounterAndEmptyCellsForMissingOnes) {
  auto header = SplitCsv(CsvHeader());
  ASSERT_EQ(header.size(), Catalog().size() + 2);
  EXPECT_EQ(header[0], "timestamp");
  EXPECT_EQ(header[1], "elapsed_seconds");
  for (size_t i = 0; i < Catalog().size(); ++i) EXPECT_EQ(header[i + 2], Catalog()[i].name);

  auto row = SplitCsv(CsvRow(Example(), 0.25));
  ASSERT_EQ(row.size(), header.size());
  EXPECT_EQ(row[0], "2026-11-23T20:31:02.250Z");
  EXPECT_EQ(row[1], "0.25");
  for (size_t i = 2; i < header.size(); ++i) {
    if (header[i] == names::kRss) {
      EXPECT_EQ(row[i], "10485760");
    } else if (header[i] == names::kCpuCorePercent) {
      EXPECT_EQ(row[i], "12.346");
    } else if (header[i] == names::kMinorFaults) {
      EXPECT_EQ(row[i], "17");
    } else {
      EXPECT_EQ(row[i], "") << header[i];
    }
  }
}

TEST(Format, JsonArrayAndJsonLinesParseAndOmitMissingCounters) {
  RowWriter json(OutputFormat::kJson);
  std::string doc = json.Begin();
  doc += json.Row(Example(), 0);
  std::string cut = doc;  // a file cut after a row: whole rows, no "]"
  doc += json.Row(Example(), 1.5);
  doc += json.End();
  auto parsed = nlohmann::json::parse(doc);
  ASSERT_TRUE(parsed.is_array());
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[1]["elapsed_seconds"], 1.5);
  EXPECT_EQ(parsed[0][names::kRss], 10485760);
  EXPECT_EQ(parsed[0][names::kMinorFaults], 17);
  EXPECT_FALSE(parsed[0].contains(names::kThreads));
  EXPECT_EQ(nlohmann::json::parse(cut + "\n]").size(), 1u);

  RowWriter lines(OutputFormat::kJsonLines);
  std::string text =
      lines.Begin() + lines.Row(Example(), 0) + lines.Row(Example(), 1) + lines.End();
  size_t nl = text.find('\n');
  ASSERT_NE(nl, std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(text.substr(0, nl))["timestamp"], "2026-11-23T20:31:02.250Z");
  EXPECT_EQ(nlohmann::json::parse(text.substr(nl + 1))["elapsed_seconds"], 1);

  RowWriter csv(OutputFormat::kCsv);
  EXPECT_EQ(csv.Begin(), CsvHeader() + "\n");
  EXPECT_EQ(csv.End(), "");
}

TEST(Format, ParseOutputFormat) {
  EXPECT_EQ(*ParseOutputFormat("csv"), OutputFormat::kCsv);
  EXPECT_EQ(*ParseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(*ParseOutputFormat("jsonl"), OutputFormat::kJsonLines);
  auto bad = ParseOutputFormat("xml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("xml"), std::string::npos);
}

TEST(Format, TableShowsWhatTheSampleHasInCatalogOrder) {
  auto lines = TableLines(Example());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find("RSS"), std::string::npos);
  EXPECT_NE(lines[0].find("10.0 MiB"), std::string::npos);
  EXPECT_NE(lines[1].find("CPU % of one core"), std::string::npos);
  EXPECT_NE(lines[2].find("Minor page faults"), std::string::npos);
  EXPECT_EQ(lines[0].size(), lines[1].size()) << "values are aligned";
}

}  // namespace
}  // namespace cppdiag::counters
