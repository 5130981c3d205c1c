#include "cli/analyze/core_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "cli/analyze/elf_layout.h"

namespace cppdiag::cli::analyze {
namespace {

// [offset, offset + len) lies inside a file of `size` bytes (no overflow).
bool Fits(uint64_t offset, uint64_t len, uint64_t size) {
  return offset <= size && len <= size - offset;
}

uint64_t AlignUp(uint64_t v, uint64_t align) { return (v + align - 1) & ~(align - 1); }

// "truncated: <what> ends at byte E of a file of S bytes", or, when the end
// does not even fit in 64 bits, a corrupt offset.
Error Truncated(const std::string& what, uint64_t offset, uint64_t len, uint64_t size) {
  if (len > UINT64_MAX - offset) {
    return Error::Invalid(fmt::format("corrupt: {} has offset {:#x} and size {:#x}, past any file",
                                      what, offset, len));
  }
  return Error::Invalid(
      fmt::format("truncated: {} ends at byte {} of a file of {} bytes", what, offset + len, size));
}

std::string TypeName(uint16_t e_type) {
  switch (e_type) {
    case ET_NONE:
      return "an ELF file of no type (ET_NONE)";
    case ET_REL:
      return "an ELF relocatable object (ET_REL)";
    case ET_EXEC:
      return "an ELF executable (ET_EXEC)";
    case ET_DYN:
      return "an ELF shared object or PIE executable (ET_DYN)";
  }
  return fmt::format("an ELF file of type {:#x}", e_type);
}

std::string SegmentName(size_t i, const Elf64_Phdr& ph) {
  if (ph.p_type == PT_LOAD) return fmt::format("segment {} (PT_LOAD at {:#x})", i, ph.p_vaddr);
  if (ph.p_type == PT_NOTE) return fmt::format("segment {} (PT_NOTE)", i);
  return fmt::format("segment {}", i);
}

}  // namespace

std::string MachineName(uint16_t e_machine) {
  switch (e_machine) {
    case EM_X86_64:
      return "x86-64";
    case EM_386:
      return "i386";
    case EM_AARCH64:
      return "aarch64";
    case EM_ARM:
      return "arm";
    case EM_PPC64:
      return "ppc64";
    case EM_PPC:
      return "ppc";
    case EM_S390:
      return "s390x";
    case EM_RISCV:
      return "riscv";
    case EM_MIPS:
      return "mips";
    case EM_SPARCV9:
      return "sparc64";
    case EM_LOONGARCH:
      return "loongarch";
  }
  return fmt::format("machine {}", e_machine);
}

Result<CoreFile> CoreFile::Open(const std::string& path) {
  CPPDIAG_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  CoreFile core;
  core.file_ = std::move(file);
  core.bytes_ = core.file_.bytes();
  if (Status st = core.Parse(); !st) return Error::Invalid(path + ": " + st.error().message());
  return core;
}

Result<CoreFile> CoreFile::FromBytes(std::vector<uint8_t> bytes) {
  CoreFile core;
  core.owned_ = std::move(bytes);
  core.bytes_ = core.owned_;
  CPPDIAG_RETURN_IF_ERROR(core.Parse());
  return core;
}

Status CoreFile::Parse() {
  const uint64_t size = bytes_.size();
  if (size == 0) return Error::Invalid("empty file");
  if (size < SELFMAG || std::memcmp(bytes_.data(), ELFMAG, SELFMAG) != 0) {
    return Error::Invalid("not an ELF file");
  }
  if (size < EI_NIDENT) return Truncated("the ELF header", 0, kEhdrSize, size);
  uint8_t cls = bytes_[EI_CLASS], data = bytes_[EI_DATA];
  if (cls == ELFCLASS32) return Error::Invalid("a 32-bit ELF file; cppdiag reads x86-64 cores");
  if (cls != ELFCLASS64) return Error::Invalid(fmt::format("corrupt ELF header: class {}", cls));
  if (data == ELFDATA2MSB) {
    return Error::Invalid("a big-endian ELF file; cppdiag reads x86-64 cores");
  }
  if (data != ELFDATA2LSB) {
    return Error::Invalid(fmt::format("corrupt ELF header: data encoding {}", data));
  }
  if (size < kEhdrSize) return Truncated("the ELF header", 0, kEhdrSize, size);
  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes_.data(), sizeof eh);
  if (eh.e_type != ET_CORE) return Error::Invalid("not a core: " + TypeName(eh.e_type));
  if (eh.e_machine != EM_X86_64) {
    return Error::Invalid("an ELF core of " + MachineName(eh.e_machine) +
                          "; cppdiag reads x86-64 cores");
  }
  if (eh.e_phentsize != kPhdrSize) {
    return Error::Invalid(
        fmt::format("corrupt ELF header: e_phentsize is {}, not {}", eh.e_phentsize, kPhdrSize));
  }
  phnum_ = eh.e_phnum;
  if (eh.e_phnum == PN_XNUM) {
    // Extended numbering: the real count is sh_info of section header 0.
    if (eh.e_shoff == 0 || eh.e_shentsize != kShdrSize) {
      return Error::Invalid(
          fmt::format("corrupt ELF header: e_phnum is PN_XNUM but section header 0 is missing "
                      "(e_shoff {}, e_shentsize {})",
                      eh.e_shoff, eh.e_shentsize));
    }
    if (!Fits(eh.e_shoff, kShdrSize, size)) {
      return Truncated("section header 0 (the program header count)", eh.e_shoff, kShdrSize, size);
    }
    Elf64_Shdr sh;
    std::memcpy(&sh, bytes_.data() + eh.e_shoff, sizeof sh);
    phnum_ = sh.sh_info;
  }
  if (phnum_ == 0) return Error::Invalid("corrupt ELF header: no program headers");
  if (phnum_ > kMaxProgramHeaders) {
    return Error::Invalid(fmt::format("corrupt ELF header: {} program headers (cppdiag reads {})",
                                      phnum_, kMaxProgramHeaders));
  }
  return ParseProgramHeaders(eh.e_phoff);
}

Status CoreFile::ParseProgramHeaders(uint64_t phoff) {
  const uint64_t size = bytes_.size();
  if (phoff >= size) {
    return Error::Invalid(fmt::format(
        "truncated: the program headers start at byte {} of a file of {} bytes", phoff, size));
  }
  uint64_t fitting = (size - phoff) / kPhdrSize;
  if (phnum_ > fitting) {
    return Truncated(fmt::format("program header {}", fitting), phoff + fitting * kPhdrSize,
                     kPhdrSize, size);
  }
  for (uint64_t i = 0; i < phnum_; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, bytes_.data() + phoff + i * kPhdrSize, sizeof ph);
    if (ph.p_type != PT_LOAD && ph.p_type != PT_NOTE) continue;
    if (!Fits(ph.p_offset, ph.p_filesz, size)) {
      return Truncated(SegmentName(i, ph), ph.p_offset, ph.p_filesz, size);
    }
    if (ph.p_type == PT_NOTE) {
      CPPDIAG_RETURN_IF_ERROR(ParseNotes(i, ph.p_offset, ph.p_filesz, ph.p_align));
      continue;
    }
    if (ph.p_filesz > ph.p_memsz) {
      return Error::Invalid(fmt::format("corrupt: {} stores {} bytes but maps only {}",
                                        SegmentName(i, ph), ph.p_filesz, ph.p_memsz));
    }
    if (ph.p_memsz > UINT64_MAX - ph.p_vaddr) {
      return Error::Invalid(fmt::format("corrupt: {} of {} bytes runs past the address space",
                                        SegmentName(i, ph), ph.p_memsz));
    }
    if (ph.p_memsz == 0) continue;  // holds no address
    loads_.push_back({.phdr_index = i,
                      .vaddr = ph.p_vaddr,
                      .memsz = ph.p_memsz,
                      .offset = ph.p_offset,
                      .filesz = ph.p_filesz,
                      .flags = ph.p_flags});
  }
  std::stable_sort(loads_.begin(), loads_.end(),
                   [](const LoadSegment& a, const LoadSegment& b) { return a.vaddr < b.vaddr; });
  for (size_t k = 1; k < loads_.size(); ++k) {
    const LoadSegment &a = loads_[k - 1], &b = loads_[k];
    if (b.vaddr < a.end()) {
      return Error::Invalid(
          fmt::format("corrupt: segments {} and {} overlap ({:#x}-{:#x} and {:#x}-{:#x})",
                      a.phdr_index, b.phdr_index, a.vaddr, a.end(), b.vaddr, b.end()));
    }
  }
  return OkStatus();
}

Status CoreFile::ParseNotes(size_t phdr_index, uint64_t offset, uint64_t size, uint64_t p_align) {
  // Notes are 4-byte aligned (8 only in a segment that says so, as libelf reads them).
  const uint64_t align = p_align == 8 ? 8 : 4;
  std::span<const uint8_t> seg = bytes_.subspan(offset, size);
  auto corrupt = [&](size_t index, const std::string& why) {
    return Error::Invalid(
        fmt::format("note {} is corrupt: {} runs past the end of its PT_NOTE "
                    "(segment {}, {} bytes)",
                    index, why, phdr_index, size));
  };
  uint64_t pos = 0;
  while (pos < size) {
    size_t index = notes_.size();
    if (size - pos < kNhdrSize) {
      // Zero padding shorter than a header may end a segment; anything else is a cut note.
      std::span<const uint8_t> rest = seg.subspan(pos);
      if (std::all_of(rest.begin(), rest.end(), [](uint8_t b) { return b == 0; })) break;
      return corrupt(index, "its header");
    }
    auto namesz = LoadLe<uint32_t>(seg, pos);
    auto descsz = LoadLe<uint32_t>(seg, pos + 4);
    auto type = LoadLe<uint32_t>(seg, pos + 8);
    uint64_t name_off = pos + kNhdrSize;
    if (namesz > size - name_off) return corrupt(index, fmt::format("its name ({} bytes)", namesz));
    uint64_t desc_off = std::min(AlignUp(name_off + namesz, align), size);
    if (descsz > size - desc_off) {
      return corrupt(index, fmt::format("its descriptor ({} bytes)", descsz));
    }
    if (index >= kMaxNotes) {
      return Error::Invalid(fmt::format("corrupt: more than {} notes", kMaxNotes));
    }
    const char* name = reinterpret_cast<const char*>(seg.data() + name_off);
    notes_.push_back({.index = index,
                      .name = std::string_view(name, strnlen(name, namesz)),
                      .type = type,
                      .desc = seg.subspan(desc_off, descsz),
                      .offset = offset + pos});
    pos = std::min(AlignUp(desc_off + descsz, align), size);
  }
  return OkStatus();
}

const LoadSegment* CoreFile::FindLoad(uint64_t vaddr) const {
  auto it = std::upper_bound(loads_.begin(), loads_.end(), vaddr,
                             [](uint64_t a, const LoadSegment& s) { return a < s.vaddr; });
  if (it == loads_.begin()) return nullptr;
  --it;
  return vaddr < it->end() ? &*it : nullptr;
}

Result<std::vector<MemoryPiece>> CoreFile::ReadMemory(uint64_t vaddr, uint64_t len) const {
  std::vector<MemoryPiece> pieces;
  if (len == 0) return pieces;
  if (len - 1 > UINT64_MAX - vaddr) {
    return Error::Invalid(
        fmt::format("{} bytes from {:#x} run past the address space", len, vaddr));
  }
  const uint64_t last = vaddr + (len - 1);  // inclusive: a range may end at 2^64
  uint64_t a = vaddr;
  for (;;) {
    const LoadSegment* seg = FindLoad(a);
    if (seg == nullptr) {
      std::string where =
          a == vaddr ? ""
                     : fmt::format(" ({} bytes into the {} from {:#x})", a - vaddr, len, vaddr);
      return Error::Invalid(fmt::format(
          "{:#x} is not in the dump: no segment holds it (nothing was mapped there){}", a, where));
    }
    uint64_t rel = a - seg->vaddr;
    uint64_t seg_last = seg->end() - 1;
    uint64_t n = std::min(last, seg_last) - a + 1;
    if (rel < seg->filesz) {
      n = std::min(n, seg->filesz - rel);
      pieces.push_back({.vaddr = a, .size = n, .data = bytes_.subspan(seg->offset + rel, n)});
    } else {
      pieces.push_back({.vaddr = a, .size = n, .data = {}});
    }
    if (n - 1 >= last - a) break;  // this piece reaches `last`
    a += n;
  }
  return pieces;
}

Result<uint64_t> CoreFile::CopyMemory(uint64_t vaddr, std::span<uint8_t> out) const {
  CPPDIAG_ASSIGN_OR_RETURN(std::vector<MemoryPiece> pieces, ReadMemory(vaddr, out.size()));
  uint64_t stored = 0;
  for (const MemoryPiece& p : pieces) {
    uint8_t* dst = out.data() + (p.vaddr - vaddr);
    if (p.stored()) {
      std::memcpy(dst, p.data.data(), p.size);
      stored += p.size;
    } else {
      std::memset(dst, 0, p.size);
    }
  }
  return stored;
}

}  // namespace cppdiag::cli::analyze
