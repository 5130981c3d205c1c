// CoreDebugInfo: the modules of a core, their symbols and the threads'
// backtraces, with elfutils' libdwfl.
//
// Modules come from the core's NT_FILE note: each file mapped there is
// opened as the target named it, under the sysroot ("/" by default) through
// TargetRoot (regular files only, never out of the root: the paths are the
// target's), except the executable (the file holding AT_ENTRY), which is
// --exe when given. A file whose build id differs from the one in the
// module's ELF headers as stored in the core is another build: not read,
// why_not says so. Debug information comes from this machine's build-id
// directories (/usr/lib/debug/.build-id) or a .gnu_debuglink beside the file
// under the root. Modules are reported here rather than by
// dwfl_core_file_report, which opens NT_FILE's paths with a plain open(2)
// outside any root (a FIFO there would hang the reader).
//
// Backtraces: libdwfl's unwinder on the core's registers and memory
// (dwfl_core_file_attach): CFI (.eh_frame, .debug_frame) first, frame
// pointers where there is none. Each frame carries its function, file:line
// and the functions inlined at its pc.
//
//   CPPDIAG_ASSIGN_OR_RETURN(auto debug, CoreDebugInfo::Create(core, notes, {}));
//   for (const ThreadStack& t : debug->Backtraces()) ...
//   std::vector<heap::SymbolFrame> f = debug->Symbolize(0x401136);
//
// Not thread-safe (libdwfl's caches).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/analyze/core_file.h"
#include "cli/analyze/core_notes.h"
#include "cli/heap/symbolizer.h"
#include "common/status.h"

namespace cppdiag::cli::analyze {

struct DebugOptions {
  std::string executable;  // --exe: read instead of the core's executable path
  std::string sysroot;     // --sysroot: the directory that stands for the target's "/"
  // --debug-dir: where build-id debug files are looked up
  // (DIR/.build-id/xx/yyyy.debug); empty: libdwfl's default, /usr/lib/debug.
  std::string debug_dir;
};

struct ModuleInfo {
  std::string name;         // the file's base name
  std::string path;         // as the core names it (NT_FILE)
  std::string opened;       // the file read for it; empty: none
  uint64_t start = 0;       // its lowest mapped address
  uint64_t end = 0;         // one past its highest
  std::string build_id;     // hex, from the file read; empty: none or not read
  bool symbols = false;     // a symbol table (.symtab or .dynsym)
  bool debug_info = false;  // DWARF (functions, lines, inlining)
  std::string why_not;      // when nothing was read: what went wrong
  bool executable = false;  // holds AT_ENTRY
};

struct Frame {
  uint64_t pc = 0;
  // The pc is where the thread was (its top frame, or a frame a signal
  // interrupted), not a return address: it is looked up as it is, return
  // addresses at pc - 1 (the call).
  bool activation = false;
  std::vector<heap::SymbolFrame> functions;  // inlined first, then the function; empty: unknown
  std::string module;                        // its module's name; empty: in none
};

struct ThreadStack {
  pid_t tid = 0;
  std::vector<Frame> frames;  // innermost first
  std::string stopped;  // why unwinding ended early (libdwfl's message); empty: it reached the end
};

class CoreDebugInfo {
 public:
  // Fails only when libdwfl cannot be set up; modules that cannot be read
  // are listed with why_not.
  static Result<std::unique_ptr<CoreDebugInfo>> Create(const CoreFile& core, const CoreNotes& notes,
                                                       const DebugOptions& options);
  ~CoreDebugInfo();
  CoreDebugInfo(const CoreDebugInfo&) = delete;
  CoreDebugInfo& operator=(const CoreDebugInfo&) = delete;

  const std::vector<ModuleInfo>& modules() const { return modules_; }
  // modules() with `symbols` and `debug_info` filled in: loads each
  // module's symbol table and looks for its DWARF (once).
  const std::vector<ModuleInfo>& ModulesWithSymbols();
  // The module mapped at `address`, or null.
  const ModuleInfo* ModuleAt(uint64_t address) const;
  // A symbol of the module whose file name starts with `module_prefix`
  // ("libc.so"), by name, from its symbol table (its debug file's when there
  // is one: local symbols such as glibc's main_arena are only there).
  struct Symbol {
    uint64_t address = 0;
    uint64_t size = 0;
    const ModuleInfo* module = nullptr;
  };
  std::optional<Symbol> FindSymbol(std::string_view module_prefix, std::string_view name);
  // The name of the module whose segments (bss included) hold `address`,
  // and the address's offset from the module's load bias; empty: none.
  std::string ModuleNameAt(uint64_t address, uint64_t* offset);
  // The name of the symbol table's entry holding `address` (mangled), or
  // empty; cheaper than Symbolize (no DWARF).
  std::string SymbolNameAt(uint64_t address);
  // The functions at `address` (see heap::FramesInModule); empty: no symbol.
  std::vector<heap::SymbolFrame> Symbolize(uint64_t address);
  // Every thread's backtrace, in the core's order (computed once). Frames
  // past `max_frames` are dropped (a corrupt stack may loop).
  const std::vector<ThreadStack>& Backtraces(size_t max_frames = 256);
  // Why the core's threads cannot be unwound at all (empty: they can); then
  // Backtraces() is empty.
  const std::string& unwind_error() const;

 private:
  struct State;
  CoreDebugInfo();
  std::unique_ptr<State> state_;
  std::vector<ModuleInfo> modules_;
  std::optional<std::vector<ThreadStack>> stacks_;
  bool symbols_loaded_ = false;
};

}  // namespace cppdiag::cli::analyze
