// Reads an ELF core back with elfutils' libelf (independently of the writer)
// for tests: header, program headers, notes in order, memory by address.
#pragma once

#include <gelf.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace cppdiag::dump::testing {

struct CoreNote {
  std::string name;
  uint32_t type = 0;
  std::vector<uint8_t> desc;
};

struct CoreFile {
  GElf_Ehdr ehdr{};
  size_t phnum = 0;  // the real count (PN_XNUM resolved)
  std::vector<GElf_Phdr> phdrs;
  std::vector<CoreNote> notes;
  std::vector<uint8_t> bytes;

  std::vector<const CoreNote*> NotesOfType(const std::string& name, uint32_t type) const;
  // Bytes at [addr, addr+len) from PT_LOAD data; nullopt if any byte has no
  // data in the core (p_filesz 0 or outside every segment).
  std::optional<std::vector<uint8_t>> ReadMemory(uint64_t addr, size_t len) const;
  // The PT_LOAD containing `addr`, or null.
  const GElf_Phdr* LoadAt(uint64_t addr) const;
  std::vector<GElf_Phdr> Loads() const;
};

Result<CoreFile> ParseCore(std::vector<uint8_t> bytes);
Result<CoreFile> ParseCoreFile(const std::string& path);

}  // namespace cppdiag::dump::testing
