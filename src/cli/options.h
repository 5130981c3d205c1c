// The options several commands take, each defined once so they read the
// same everywhere: durations (the syntax of common/parse.h's ParseDuration)
// and dump types (the table of diag/dump/dump_type.h).
//
// A bad value is a usage error when the command line is read: one line,
// exit status 2, nothing done ("cppdiag: --interval: bad interval "fast":
// ..."), like any other CLI11 parse error.
//
//   std::chrono::nanoseconds interval = std::chrono::seconds(1);
//   AddDurationOption(cmd, "--interval", &interval, "Time between samples", Zero::kRefused);
//   AddDumpTypeOption(cmd, &type);
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "common/status.h"

namespace cppdiag::cli {

enum class Zero { kAllowed, kRefused };

// "500ms", "2s", "1.5m", "1h" (units ns, us, ms, s, m, h; a bare number is
// seconds), as `what` ("interval"): errors say "bad interval "x": ..." or
// "interval must be more than 0".
Result<std::chrono::nanoseconds> ParseDurationOption(const std::string& text,
                                                     const std::string& what, Zero zero);

// A duration option `name` ("--interval"): `*out` is its default, shown in
// the help (in a form it parses back: "1s", "500ms"), and set when the
// option is given.
CLI::Option* AddDurationOption(CLI::App* cmd, const std::string& name,
                               std::chrono::nanoseconds* out, const std::string& help, Zero zero);
// The same with no default: `*out` stays empty unless the option is given.
CLI::Option* AddDurationOption(CLI::App* cmd, const std::string& name,
                               std::optional<std::chrono::nanoseconds>* out,
                               const std::string& help, Zero zero);

// `d` as the duration options read it: "1s", "250ms", "5m", "0s".
std::string DurationArg(std::chrono::nanoseconds d);
// `d` for people, in seconds: "600 s", "0.25 s".
std::string FormatSeconds(std::chrono::nanoseconds d);

// --type: a dump type as the target takes it (full, heap, mini, triage, or
// .NET's 4, 2, 1, 3); `*out` stays empty (the target's default) unless given.
CLI::Option* AddDumpTypeOption(CLI::App* cmd, std::string* out);

}  // namespace cppdiag::cli
