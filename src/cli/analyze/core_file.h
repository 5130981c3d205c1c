// CoreFile: an x86-64 Linux ELF core, validated and indexed without copying
// it: the file is mapped (MappedFile), the headers and the PT_NOTE segments
// are checked and indexed when it is opened, and everything else (notes'
// descriptors, memory) is a span into the mapping, read only when asked.
// Opening a core of any size touches its headers and notes only.
//
// A core is untrusted input (`dump analyze` runs as root on files a target
// wrote). Open/FromBytes either succeed with every offset, size and count
// checked against the file (overflow-safe), or fail with one line:
//   "not an ELF file"
//   "a 32-bit ELF file; cppdiag reads x86-64 cores"
//   "not a core: an ELF shared object or PIE executable (ET_DYN)"
//   "an ELF core of aarch64; cppdiag reads x86-64 cores"
//   "truncated: program header 3 ends at byte 288 of a file of 200 bytes"
//   "truncated: segment 7 (PT_LOAD at 0x7ffd0000) ends at byte N of a file of M bytes"
//   "note 5 is corrupt: its descriptor (4294967295 bytes) runs past the end of its PT_NOTE"
// Open prefixes the path ("core.12: not an ELF file").
//
//   CPPDIAG_ASSIGN_OR_RETURN(CoreFile core, CoreFile::Open(path));
//   for (const CoreNote& note : core.notes()) { ... }
//   CPPDIAG_ASSIGN_OR_RETURN(auto pieces, core.ReadMemory(rsp, 64));
//
// Thread-safe for reading: a CoreFile is immutable after opening; const methods may
// run on several threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli/analyze/mapped_file.h"
#include "common/status.h"

namespace cppdiag::cli::analyze {

// Limits beyond anything a real process produces (vm.max_map_count defaults
// to 65530): they keep the index of a hostile file small.
inline constexpr uint64_t kMaxProgramHeaders = uint64_t{1} << 22;
inline constexpr size_t kMaxNotes = size_t{1} << 22;

struct CoreNote {
  size_t index = 0;               // position among all the core's notes, from 0
  std::string_view name;          // owner without its NUL: "CORE", "LINUX", "CPPDIAG"
  uint32_t type = 0;              // NT_*, in the owner's type space
  std::span<const uint8_t> desc;  // views the core
  uint64_t offset = 0;            // file offset of the note's header
};

struct LoadSegment {
  size_t phdr_index = 0;  // its program header
  uint64_t vaddr = 0;
  uint64_t memsz = 0;
  uint64_t offset = 0;  // file offset of the stored bytes
  uint64_t filesz = 0;  // <= memsz; 0: the dumper stored none of it
  uint32_t flags = 0;   // PF_R | PF_W | PF_X
  uint64_t end() const { return vaddr + memsz; }
};

// A stretch of a ReadMemory answer, inside one segment.
struct MemoryPiece {
  uint64_t vaddr = 0;
  uint64_t size = 0;
  // The stored bytes (a view of the core, `size` long), or empty when the
  // stretch lies past its segment's p_filesz: not stored in the core, it
  // reads as zero by the ELF rule (for a file mapping the dumper usually
  // left it out; the file it maps holds the real bytes).
  std::span<const uint8_t> data;
  bool stored() const { return data.size() == size; }
};

class CoreFile {
 public:
  // Maps `path` (see MappedFile for what may be opened) and validates it.
  static Result<CoreFile> Open(const std::string& path);
  // The same checks on bytes in memory (tests, the fuzzer). The CoreFile
  // owns them.
  static Result<CoreFile> FromBytes(std::vector<uint8_t> bytes);

  CoreFile(CoreFile&&) noexcept = default;
  CoreFile& operator=(CoreFile&&) noexcept = default;

  std::span<const uint8_t> bytes() const { return bytes_; }
  uint64_t program_header_count() const { return phnum_; }  // PN_XNUM resolved
  // Every note of every PT_NOTE segment, in file order.
  const std::vector<CoreNote>& notes() const { return notes_; }
  // The PT_LOAD segments, ascending and non-overlapping (checked).
  const std::vector<LoadSegment>& loads() const { return loads_; }

  // The segment holding `vaddr`, or null.
  const LoadSegment* FindLoad(uint64_t vaddr) const;

  // [vaddr, vaddr + len) as pieces in address order, one per segment
  // crossed (adjacent segments are crossed without a gap). Nothing is
  // copied. Fails when any byte lies in no segment: "0x7f00 is not in the
  // dump: no segment holds it (nothing was mapped there)".
  Result<std::vector<MemoryPiece>> ReadMemory(uint64_t vaddr, uint64_t len) const;
  // The same bytes copied into `out` (only those), with not-stored pieces
  // as zeros. Returns how many bytes of `out` were stored in the core.
  Result<uint64_t> CopyMemory(uint64_t vaddr, std::span<uint8_t> out) const;

 private:
  CoreFile() = default;
  Status Parse();
  Status ParseProgramHeaders(uint64_t phoff);
  Status ParseNotes(size_t phdr_index, uint64_t offset, uint64_t size, uint64_t align);

  MappedFile file_;                 // Open: the mapping
  std::vector<uint8_t> owned_;      // FromBytes: the bytes
  std::span<const uint8_t> bytes_;  // views one of them
  uint64_t phnum_ = 0;
  std::vector<CoreNote> notes_;
  std::vector<LoadSegment> loads_;
};

// "aarch64", "i386"... for an ELF e_machine, or "machine 1234".
std::string MachineName(uint16_t e_machine);

}  // namespace cppdiag::cli::analyze
