// Formatting shared by the `dump analyze` commands: addresses, sizes,
// signals, frames (as text and as JSON). Strings that come from the core or
// its modules are escaped (Printable) in text; JSON keeps them as they are.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cli/analyze/core_debug.h"
#include "common/status.h"

namespace cppdiag::cli::analyze {

// "0x00007ffd12345678".
std::string Address(uint64_t a);
// "0x7ffd12345678".
std::string ShortAddress(uint64_t a);
// An address as a user types it: "0x7f12..." (hex) or decimal. Errors:
// "'x12' is not an address (0x... or decimal)".
Result<uint64_t> ParseAddress(std::string_view text);
// A count as a user types it (decimal), at most `max`.
Result<uint64_t> ParseCount(std::string_view text, uint64_t max);
// "1.5 MiB", "512 B".
std::string HumanBytes(uint64_t bytes);
// "SIGSEGV"; "signal 77" for one without a name; "-" for 0.
std::string SignalName(int signo);
// "Leak(unsigned long) at leak.cc:10" (what is known of it).
std::string FunctionText(const heap::SymbolFrame& f);
// A frame's innermost function, or "?? (module+0x1234)" / "??".
std::string TopFunctionText(const Frame& f, const CoreDebugInfo& debug);
// gdb-like lines for frame number `index`: "#3  0x... in F() at f.cc:3 (mod)",
// then one "    inlined into G() at g.cc:9" line per caller it was inlined in.
std::string FrameText(const Frame& f, size_t index, const CoreDebugInfo& debug);
// {"pc":..., "module":..., "functions":[{"function","file","line","inlined"}...]}
nlohmann::json FrameJson(const Frame& f);

}  // namespace cppdiag::cli::analyze
