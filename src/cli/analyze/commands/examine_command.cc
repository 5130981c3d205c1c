// x ADDR [N]: N bytes of the process's memory from the core (default 64, at
// most 1 MiB), 16 to a line with their ASCII; bytes the dump did not store
// (past a segment's p_filesz) are shown as "..".
#include <fmt/format.h>

#include "cli/analyze/command.h"
#include "cli/analyze/format.h"

namespace cppdiag::cli::analyze {
namespace {

constexpr uint64_t kMaxBytes = uint64_t{1} << 20;

Result<CommandOutput> Examine(Session& session, const CommandArgs& args) {
  if (args.empty() || args.size() > 2) return Error::Invalid("usage: x ADDR [N]");
  CPPDIAG_ASSIGN_OR_RETURN(uint64_t addr, ParseAddress(args[0]));
  uint64_t n = 64;
  if (args.size() == 2) {
    CPPDIAG_ASSIGN_OR_RETURN(n, ParseCount(args[1], kMaxBytes));
  }
  CPPDIAG_ASSIGN_OR_RETURN(std::vector<MemoryPiece> pieces, session.core().ReadMemory(addr, n));
  // Each byte, or -1 where the dump holds none.
  std::vector<int> bytes;
  bytes.reserve(n);
  for (const MemoryPiece& p : pieces) {
    for (uint64_t i = 0; i < p.size; ++i) bytes.push_back(p.stored() ? p.data[i] : -1);
  }
  CommandOutput out;
  std::string hex, stored_mask;
  for (uint64_t line = 0; line < n; line += 16) {
    std::string cols, ascii;
    for (uint64_t i = line; i < std::min(n, line + 16); ++i) {
      int b = bytes[i];
      cols += b < 0 ? " .." : fmt::format(" {:02x}", b);
      ascii += b < 0 ? ' ' : (b >= 0x20 && b < 0x7f ? static_cast<char>(b) : '.');
    }
    out.text += fmt::format("{}:{:<48}  {}\n", Address(addr + line), cols, ascii);
  }
  for (int b : bytes) {
    hex += b < 0 ? "00" : fmt::format("{:02x}", b);
    stored_mask += b < 0 ? '0' : '1';
  }
  out.json = {{"address", addr}, {"size", n}, {"hex", hex}};
  if (stored_mask.find('0') != std::string::npos) out.json["stored"] = stored_mask;
  return out;
}

}  // namespace

const Command kExamineCommand{"x", "x ADDR [N]",
                              "read N bytes of memory (default 64): hex and ASCII", Examine};

}  // namespace cppdiag::cli::analyze
