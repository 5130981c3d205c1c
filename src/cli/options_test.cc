#include "cli/options.h"

#include <gtest/gtest.h>

#include <vector>

#include "diag/dump/dump_type.h"

namespace cppdiag::cli {
namespace {

using namespace std::chrono_literals;

// Parses `args` (after the program name) with `app`; the error, if any.
std::string Parse(CLI::App& app, std::vector<std::string> args) {
  std::vector<const char*> argv = {"cppdiag"};
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

TEST(DurationOption, TakesEveryUnitAndBareSeconds) {
  for (auto [text, expected] :
       std::vector<std::pair<std::string, std::chrono::nanoseconds>>{{"300", 300s},
                                                                     {"1.5", 1500ms},
                                                                     {"250ms", 250ms},
                                                                     {"5m", 5min},
                                                                     {"1h", 1h},
                                                                     {"10us", 10us},
                                                                     {"0", 0s}}) {
    CLI::App app;
    std::chrono::nanoseconds d = 7s;
    AddDurationOption(&app, "--linger", &d, "", Zero::kAllowed);
    EXPECT_EQ(Parse(app, {"--linger", text}), "") << text;
    EXPECT_EQ(d, expected) << text;
  }
}

TEST(DurationOption, KeepsItsDefaultAndShowsIt) {
  CLI::App app;
  std::chrono::nanoseconds d = 1s;
  auto* opt = AddDurationOption(&app, "--interval", &d, "", Zero::kRefused);
  EXPECT_EQ(Parse(app, {}), "");
  EXPECT_EQ(d, 1s);
  EXPECT_EQ(opt->get_default_str(), "1s");
  EXPECT_NE(app.help().find("--interval DURATION=1s"), std::string::npos) << app.help();

  CLI::App other;
  std::optional<std::chrono::nanoseconds> until;
  AddDurationOption(&other, "--duration", &until, "", Zero::kRefused);
  EXPECT_EQ(Parse(other, {}), "");
  EXPECT_FALSE(until.has_value());
  EXPECT_EQ(Parse(other, {"--duration", "30s"}), "");
  EXPECT_EQ(until, 30s);
}

TEST(DurationOption, RefusesBadValuesWhenParsing) {
  CLI::App app;
  std::chrono::nanoseconds d = 1s;
  AddDurationOption(&app, "--interval", &d, "", Zero::kRefused);
  std::string bad = Parse(app, {"--interval", "fast"});
  EXPECT_NE(bad.find("bad interval \"fast\""), std::string::npos) << bad;
  EXPECT_NE(Parse(app, {"--interval", "0s"}).find("interval must be more than 0"),
            std::string::npos);
  EXPECT_NE(Parse(app, {"--interval", "-1s"}), "");
  EXPECT_NE(Parse(app, {"--interval", "5 parsecs"}), "");
  EXPECT_EQ(d, 1s);
}

TEST(DurationOption, FormatsForArgumentsAndForPeople) {
  EXPECT_EQ(DurationArg(0s), "0s");
  EXPECT_EQ(DurationArg(1s), "1s");
  EXPECT_EQ(DurationArg(250ms), "250ms");
  EXPECT_EQ(DurationArg(5min), "5m");
  EXPECT_EQ(DurationArg(1500ms), "1500ms");
  EXPECT_EQ(FormatSeconds(600s), "600 s");
  EXPECT_EQ(FormatSeconds(250ms), "0.25 s");
  EXPECT_EQ(FormatSeconds(1s), "1 s");
}

TEST(DumpTypeOption, AcceptsWhatTheTargetAcceptsAndNothingElse) {
  for (const DumpTypeInfo& t : kDumpTypes) {
    for (const char* text : {t.name, t.dotnet_name, t.number}) {
      CLI::App app;
      std::string type;
      AddDumpTypeOption(&app, &type);
      EXPECT_EQ(Parse(app, {"--type", text}), "") << text;
      EXPECT_EQ(type, text);
    }
  }
  CLI::App app;
  std::string type;
  AddDumpTypeOption(&app, &type);
  std::string bad = Parse(app, {"--type", "huge"});
  EXPECT_NE(bad.find("invalid dump type 'huge': expected full, heap, mini, triage (or 4, 2, 1, 3)"),
            std::string::npos)
      << bad;
  // The help lists the table's names, in its order.
  EXPECT_NE(app.help().find("full, heap, mini or triage (or .NET's 4, 2, 1, 3"), std::string::npos)
      << app.help();
}

}  // namespace
}  // namespace cppdiag::cli
