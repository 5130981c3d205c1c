// Builds small ELF cores byte by byte for tests of the reader: an ELF
// header, one PT_NOTE (first) and PT_LOADs, optionally extended numbering,
// and where each part landed, so a test can corrupt exactly one field.
//
//   CoreBuilder b;
//   b.Note("CORE", NT_PRSTATUS, PrstatusDesc(1234));
//   b.Load(0x10000, 0x2000, std::string(4096, 'x'));  // the second page not stored
//   BuiltCore core = b.Build();
//   core.Put<uint32_t>(core.note_offsets[0] + 4, 0xffffffff);  // descsz overflows
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "cli/analyze/elf_layout.h"

namespace cppdiag::cli::analyze::testing {

struct BuiltCore {
  std::vector<uint8_t> bytes;
  uint64_t phoff = 0;
  uint64_t shoff = 0;  // 0 unless extended numbering
  uint64_t notes_offset = 0;
  uint64_t notes_size = 0;
  std::vector<uint64_t> note_offsets;  // each note's header
  std::vector<uint64_t> load_offsets;  // each PT_LOAD's data

  uint64_t phdr_offset(size_t i) const { return phoff + i * kPhdrSize; }
  template <typename T>
  void Put(uint64_t offset, T v) {
    std::memcpy(bytes.data() + offset, &v, sizeof v);
  }
};

class CoreBuilder {
 public:
  CoreBuilder& Note(std::string name, uint32_t type, std::vector<uint8_t> desc);
  // A PT_LOAD of `memsz` bytes at `vaddr` storing `data` (p_filesz = its size).
  CoreBuilder& Load(uint64_t vaddr, uint64_t memsz, std::string_view data, uint32_t flags = 6);
  // Writes a PN_XNUM e_phnum and the real count in section header 0.
  CoreBuilder& ExtendedNumbering() {
    extended_ = true;
    return *this;
  }
  BuiltCore Build() const;

 private:
  struct PendingNote {
    std::string name;
    uint32_t type;
    std::vector<uint8_t> desc;
  };
  struct PendingLoad {
    uint64_t vaddr, memsz;
    std::string data;
    uint32_t flags;
  };
  std::vector<PendingNote> notes_;
  std::vector<PendingLoad> loads_;
  bool extended_ = false;
};

// Descriptors in the x86-64 layouts.
std::vector<uint8_t> PrstatusDesc(pid_t tid, int signal = 0, uint64_t rip = 0, uint64_t rsp = 0);
std::vector<uint8_t> PrpsinfoDesc(std::string_view fname, std::string_view psargs, uint32_t uid);
std::vector<uint8_t> SiginfoDesc(int signo, int code, uint64_t addr);
struct FileEntry {
  uint64_t start, end, page_offset;
  std::string path;
};
std::vector<uint8_t> FileNoteDesc(const std::vector<FileEntry>& entries, uint64_t page_size = 4096);
std::vector<uint8_t> Bytes(std::string_view s);

}  // namespace cppdiag::cli::analyze::testing
