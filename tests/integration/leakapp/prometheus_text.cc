#include "integration/leakapp/prometheus_text.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace cppdiag::testing {
namespace {

bool IsNameChar(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

// Reads a metric or label name at `*pos`.
std::string ReadName(std::string_view line, size_t* pos) {
  size_t start = *pos;
  while (*pos < line.size() && IsNameChar(line[*pos], *pos == start)) ++*pos;
  return std::string(line.substr(start, *pos - start));
}

// {a="x",b="y\"z"} at `*pos`; false if malformed.
bool ReadLabels(std::string_view line, size_t* pos, std::map<std::string, std::string>* out) {
  ++*pos;  // '{'
  while (*pos < line.size() && line[*pos] != '}') {
    std::string key = ReadName(line, pos);
    if (key.empty() || *pos + 1 >= line.size() || line[*pos] != '=' || line[*pos + 1] != '"') {
      return false;
    }
    *pos += 2;
    std::string value;
    for (;;) {
      if (*pos >= line.size()) return false;
      char c = line[(*pos)++];
      if (c == '"') break;
      if (c == '\\') {
        if (*pos >= line.size()) return false;
        char e = line[(*pos)++];
        value += e == 'n' ? '\n' : e;
      } else {
        value += c;
      }
    }
    (*out)[key] = value;
    if (*pos < line.size() && line[*pos] == ',') ++*pos;
  }
  if (*pos >= line.size()) return false;
  ++*pos;  // '}'
  return true;
}

bool ParseValue(const std::string& text, double* out) {
  static const std::map<std::string, double> kSpecial = {
      {"+Inf", INFINITY}, {"Inf", INFINITY}, {"-Inf", -INFINITY}, {"NaN", NAN}};
  if (auto it = kSpecial.find(text); it != kSpecial.end()) {
    *out = it->second;
    return true;
  }
  if (text.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && std::isfinite(*out);
}

// The family a sample belongs to: itself, or for histograms and summaries the
// name without _bucket, _sum or _count.
std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  if (types.count(name)) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string s(suffix);
    if (name.size() > s.size() && name.ends_with(s)) {
      std::string base = name.substr(0, name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && (it->second == "histogram" || it->second == "summary")) return base;
    }
  }
  return name;
}

}  // namespace

std::optional<double> PrometheusText::Value(
    const std::string& name, const std::map<std::string, std::string>& labels) const {
  for (const auto& s : samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nullopt;
}

std::optional<PrometheusText> ParsePrometheusText(std::string_view text, std::string* error) {
  PrometheusText out;
  std::istringstream in{std::string(text)};
  std::string line;
  auto fail = [&](const std::string& why) {
    *error = why + ": '" + line + "'";
    return std::nullopt;
  };
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words(line.substr(1));
      std::string keyword, name, rest;
      words >> keyword >> name;
      std::getline(words >> std::ws, rest);
      if (keyword == "HELP") {
        if (name.empty()) return fail("HELP without a metric name");
        out.help[name] = rest;
      } else if (keyword == "TYPE") {
        static const char* const kTypes[] = {"counter", "gauge", "histogram", "summary", "untyped"};
        bool known = false;
        for (const char* t : kTypes) known = known || rest == t;
        if (name.empty() || !known) return fail("bad TYPE line");
        if (out.type.count(name)) return fail("second TYPE line for " + name);
        out.type[name] = rest;
      }
      continue;  // other comments are allowed
    }
    PrometheusSample sample;
    size_t pos = 0;
    sample.name = ReadName(line, &pos);
    if (sample.name.empty()) return fail("sample without a metric name");
    if (pos < line.size() && line[pos] == '{' && !ReadLabels(line, &pos, &sample.labels)) {
      return fail("malformed labels");
    }
    if (pos >= line.size() || line[pos] != ' ') return fail("no space before the value");
    std::istringstream rest(line.substr(pos));
    std::string value, timestamp, extra;
    rest >> value >> timestamp >> extra;
    if (!ParseValue(value, &sample.value)) return fail("value is not a number");
    if (!extra.empty()) return fail("trailing text");
    std::string family = FamilyOf(sample.name, out.type);
    if (!out.help.count(family)) return fail("no HELP line before the sample of " + family);
    if (!out.type.count(family)) return fail("no TYPE line before the sample of " + family);
    out.samples.push_back(std::move(sample));
  }
  return out;
}

}  // namespace cppdiag::testing
