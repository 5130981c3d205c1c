#include "cli/analyze/format.h"

#include <fmt/format.h>
#include <string.h>

#include <charconv>

#include "cli/analyze/core_notes.h"

namespace cppdiag::cli::analyze {

std::string Address(uint64_t a) { return fmt::format("{:#018x}", a); }
std::string ShortAddress(uint64_t a) { return fmt::format("{:#x}", a); }

Result<uint64_t> ParseAddress(std::string_view text) {
  uint64_t v = 0;
  std::string_view digits = text;
  int base = 10;
  if (digits.starts_with("0x") || digits.starts_with("0X")) {
    digits.remove_prefix(2);
    base = 16;
  }
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return Error::Invalid(
        fmt::format("'{}' is not an address (0x... or decimal)", Printable(text)));
  }
  return v;
}

Result<uint64_t> ParseCount(std::string_view text, uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 10);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v > max) {
    return Error::Invalid(fmt::format("'{}' is not a count from 0 to {}", Printable(text), max));
  }
  return v;
}

std::string HumanBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, kUnits[u]);
}

std::string SignalName(int signo) {
  if (signo == 0) return "-";
  const char* abbrev = sigabbrev_np(signo);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", signo);
}

std::string FunctionText(const heap::SymbolFrame& f) {
  std::string out = Printable(f.function);
  if (!f.file.empty()) out += fmt::format(" at {}:{}", Printable(f.file), f.line);
  return out;
}

std::string TopFunctionText(const Frame& f, const CoreDebugInfo& debug) {
  if (!f.functions.empty()) return FunctionText(f.functions.front());
  if (const ModuleInfo* m = debug.ModuleAt(f.pc)) {
    return fmt::format("?? ({}+{:#x})", Printable(m->name), f.pc - m->start);
  }
  return "??";
}

std::string FrameText(const Frame& f, size_t index, const CoreDebugInfo& debug) {
  std::string module = f.module.empty() ? "" : fmt::format(" ({})", Printable(f.module));
  std::string out =
      fmt::format("#{:<3} {} in {}{}\n", index, Address(f.pc), TopFunctionText(f, debug), module);
  for (size_t i = 1; i < f.functions.size(); ++i) {
    out += fmt::format("      inlined into {}\n", FunctionText(f.functions[i]));
  }
  return out;
}

nlohmann::json FrameJson(const Frame& f) {
  nlohmann::json functions = nlohmann::json::array();
  for (size_t i = 0; i < f.functions.size(); ++i) {
    const heap::SymbolFrame& s = f.functions[i];
    nlohmann::json j = {{"function", s.function},
                        {"symbol", s.system_name},
                        {"inlined", i + 1 < f.functions.size()}};
    if (!s.file.empty()) {
      j["file"] = s.file;
      j["line"] = s.line;
    }
    functions.push_back(std::move(j));
  }
  nlohmann::json out = {{"pc", f.pc}, {"functions", std::move(functions)}};
  if (!f.module.empty()) out["module"] = f.module;
  return out;
}

}  // namespace cppdiag::cli::analyze
