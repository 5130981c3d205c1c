#include "cli/options.h"

#include <cstdio>
#include <memory>

#include "common/parse.h"
#include "diag/dump/dump_type.h"

namespace cppdiag::cli {
namespace {

using std::chrono::nanoseconds;

// "--interval" -> "interval", for the messages.
std::string What(const std::string& name) {
  std::string what = name.substr(name.rfind(',') + 1);
  while (!what.empty() && what.front() == '-') what.erase(0, 1);
  return what;
}

// Adds the option with `set` called on each valid value; the check runs
// first (CLI11 validates before the callback), so `set` sees only values
// that parse.
CLI::Option* AddDuration(CLI::App* cmd, const std::string& name, const std::string& help, Zero zero,
                         const std::function<void(nanoseconds)>& set) {
  std::string what = What(name);
  auto* opt = cmd->add_option_function<std::string>(
      name, [=](const std::string& text) { set(*ParseDurationOption(text, what, zero)); }, help);
  opt->type_name("DURATION");
  opt->check(CLI::Validator(
      [=](std::string& text) {
        auto d = ParseDurationOption(text, what, zero);
        return d ? std::string() : d.error().message();
      },
      ""));
  return opt;
}

}  // namespace

Result<nanoseconds> ParseDurationOption(const std::string& text, const std::string& what,
                                        Zero zero) {
  auto d = ParseDuration(text);
  if (!d) return Error::Invalid("bad " + what + " \"" + text + "\": " + d.error().message());
  if (zero == Zero::kRefused && d->count() <= 0) {
    return Error::Invalid(what + " must be more than 0");
  }
  return *d;
}

CLI::Option* AddDurationOption(CLI::App* cmd, const std::string& name, nanoseconds* out,
                               const std::string& help, Zero zero) {
  return AddDuration(cmd, name, help, zero, [out](nanoseconds d) { *out = d; })
      ->default_str(DurationArg(*out));
}

CLI::Option* AddDurationOption(CLI::App* cmd, const std::string& name,
                               std::optional<nanoseconds>* out, const std::string& help,
                               Zero zero) {
  return AddDuration(cmd, name, help, zero, [out](nanoseconds d) { *out = d; });
}

std::string DurationArg(nanoseconds d) {
  struct Unit {
    int64_t ns;
    const char* name;
  };
  static constexpr Unit kUnits[] = {{3600'000'000'000, "h"}, {60'000'000'000, "m"},
                                    {1'000'000'000, "s"},    {1'000'000, "ms"},
                                    {1'000, "us"},           {1, "ns"}};
  if (d.count() == 0) return "0s";
  for (const Unit& u : kUnits) {
    if (d.count() % u.ns == 0) return std::to_string(d.count() / u.ns) + u.name;
  }
  return std::to_string(d.count()) + "ns";
}

std::string FormatSeconds(nanoseconds d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(d.count()) / 1e9);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s + " s";
}

CLI::Option* AddDumpTypeOption(CLI::App* cmd, std::string* out) {
  std::string names, numbers, listed;
  for (size_t i = 0; i < std::size(kDumpTypes); ++i) {
    const char* sep = i == 0 ? "" : i + 1 == std::size(kDumpTypes) ? " or " : ", ";
    names += sep + std::string(kDumpTypes[i].name);
    numbers += (i == 0 ? "" : ", ") + std::string(kDumpTypes[i].number);
    listed += (i == 0 ? "" : ",") + std::string(kDumpTypes[i].name);
  }
  auto* opt = cmd->add_option("--type", *out,
                              names + " (or .NET's " + numbers + "; default: the target's)");
  opt->type_name("TYPE");
  opt->check(CLI::Validator(
      [](std::string& text) {
        auto type = ParseDumpType(text);
        return type ? std::string() : type.error().message();
      },
      "{" + listed + "}"));
  return opt;
}

}  // namespace cppdiag::cli
