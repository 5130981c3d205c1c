// Out-of-process symbolization of a target's pcs with elfutils' libdwfl:
// each executable mapping's file is opened as the target sees it, under
// its root (/proc/<pid>/root when the target is live), through TargetRoot:
// regular files only, never a link at the path itself, never out of the
// root; separate debug files by build ID from this machine, or by debug link
// under the target's root. Each address resolves to its function
// (demangled), file and line, with the functions inlined there.
//
//   Symbolizer sym(profile.mappings, "/proc/1234/root");
//   auto where = sym.Symbolize(pc - 1);  // the call instruction, not the return address
//   where.frames.back().function  // "Leak(unsigned long)"
#pragma once

#include <elfutils/libdwfl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "diag/heap/heap_profile.h"

namespace cppdiag::cli::heap {

struct SymbolFrame {
  std::string function;     // demangled; "0x7f12... in libfoo.so" when unknown
  std::string system_name;  // as in the symbol table or DWARF (mangled)
  std::string file;         // source file, when there is line information
  int64_t line = 0;
  bool operator==(const SymbolFrame&) const = default;
};

struct SymbolizedAddress {
  // The functions at the address: inlined ones first (innermost), the
  // function the code belongs to last. Never empty.
  std::vector<SymbolFrame> frames;
  int mapping_index = -1;  // into the mappings given; -1: in none of them
  bool resolved = false;   // a symbol was found
};

// Demangles an Itanium C++ name; returns it unchanged if it is not one.
std::string Demangle(const std::string& name);

// The load bias of the ELF file open at `fd` when it is mapped at `start`
// from file offset `offset`: the PT_LOAD segment that holds `offset` says
// which virtual address `start` stands for. False when none does.
bool ElfLoadBias(int fd, uint64_t start, uint64_t offset, uint64_t* bias);

// The functions at `address` in a module libdwfl reported (inlined ones
// first, the function the code belongs to last, as Symbolize's frames);
// empty when the module has no symbol there. `*has_lines` becomes true when
// the module had line information for it.
std::vector<SymbolFrame> FramesInModule(Dwfl_Module* mod, uint64_t address,
                                        bool* has_lines = nullptr);

// libdwfl's find_debuginfo for files a target names, when each module's
// userdata (dwfl_module_info) is the TargetRoot its files are under: a
// separate debug file by build ID in this machine's debug directories, else
// by .gnu_debuglink under the root, as a regular file, its CRC checked (not
// dwfl_standard_find_debuginfo: it opens the link's name, which is the
// target's to choose, with a plain open(2)).
int FindDebuginfoUnderRoot(Dwfl_Module* mod, void** userdata, const char* modname, Dwarf_Addr base,
                           const char* file_name, const char* debuglink, GElf_Word crc,
                           char** debuginfo_file_name);

class Symbolizer {
 public:
  // `root`: the directory that stands for the target's "/"
  // ("/proc/<pid>/root"); empty: "/". A root that cannot be opened (another
  // uid's process that is not dumpable) is taken as "/", with the same rules.
  Symbolizer(std::vector<cppdiag::heap::HeapMapping> mappings, std::string root);
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  SymbolizedAddress Symbolize(uint64_t address);

  const std::vector<cppdiag::heap::HeapMapping>& mappings() const { return mappings_; }
  // Whether a mapping's file could be opened and has symbols / line info.
  bool HasSymbols(size_t mapping_index) const;
  bool HasLines(size_t mapping_index) const;

 private:
  struct State;
  std::vector<cppdiag::heap::HeapMapping> mappings_;
  std::string root_;
  std::unique_ptr<State> state_;
};

}  // namespace cppdiag::cli::heap
