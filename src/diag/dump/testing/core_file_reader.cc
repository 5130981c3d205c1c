#include "diag/dump/testing/core_file_reader.h"

#include <libelf.h>

#include <cstring>
#include <memory>

#include "common/io.h"

namespace cppdiag::dump::testing {

std::vector<const CoreNote*> CoreFile::NotesOfType(const std::string& name, uint32_t type) const {
  std::vector<const CoreNote*> out;
  for (const CoreNote& n : notes) {
    if (n.name == name && n.type == type) out.push_back(&n);
  }
  return out;
}

const GElf_Phdr* CoreFile::LoadAt(uint64_t addr) const {
  for (const GElf_Phdr& p : phdrs) {
    if (p.p_type == PT_LOAD && addr >= p.p_vaddr && addr < p.p_vaddr + p.p_memsz) return &p;
  }
  return nullptr;
}

std::vector<GElf_Phdr> CoreFile::Loads() const {
  std::vector<GElf_Phdr> out;
  for (const GElf_Phdr& p : phdrs) {
    if (p.p_type == PT_LOAD) out.push_back(p);
  }
  return out;
}

std::optional<std::vector<uint8_t>> CoreFile::ReadMemory(uint64_t addr, size_t len) const {
  std::vector<uint8_t> out;
  while (out.size() < len) {
    uint64_t a = addr + out.size();
    const GElf_Phdr* p = LoadAt(a);
    if (p == nullptr || a - p->p_vaddr >= p->p_filesz) return std::nullopt;
    uint64_t off = p->p_offset + (a - p->p_vaddr);
    uint64_t n = std::min<uint64_t>(len - out.size(), p->p_filesz - (a - p->p_vaddr));
    if (off + n > bytes.size()) return std::nullopt;
    out.insert(out.end(), bytes.begin() + off, bytes.begin() + off + n);
  }
  return out;
}

Result<CoreFile> ParseCore(std::vector<uint8_t> bytes) {
  elf_version(EV_CURRENT);
  CoreFile core;
  core.bytes = std::move(bytes);
  std::unique_ptr<Elf, int (*)(Elf*)> elf(
      elf_memory(reinterpret_cast<char*>(core.bytes.data()), core.bytes.size()), &elf_end);
  if (!elf) return Error::Invalid(std::string("elf_memory: ") + elf_errmsg(-1));
  if (elf_kind(elf.get()) != ELF_K_ELF) return Error::Invalid("not an ELF file");
  if (gelf_getehdr(elf.get(), &core.ehdr) == nullptr) {
    return Error::Invalid(std::string("gelf_getehdr: ") + elf_errmsg(-1));
  }
  if (elf_getphdrnum(elf.get(), &core.phnum) != 0) {
    return Error::Invalid(std::string("elf_getphdrnum: ") + elf_errmsg(-1));
  }
  for (size_t i = 0; i < core.phnum; ++i) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf.get(), static_cast<int>(i), &ph) == nullptr) {
      return Error::Invalid(std::string("gelf_getphdr: ") + elf_errmsg(-1));
    }
    core.phdrs.push_back(ph);
    if (ph.p_type != PT_NOTE) continue;
    Elf_Data* data =
        elf_getdata_rawchunk(elf.get(), static_cast<int64_t>(ph.p_offset), ph.p_filesz, ELF_T_NHDR);
    if (data == nullptr) return Error::Invalid(std::string("notes: ") + elf_errmsg(-1));
    size_t off = 0;
    GElf_Nhdr nh;
    size_t name_off = 0, desc_off = 0;
    while (off < data->d_size) {
      size_t next = gelf_getnote(data, off, &nh, &name_off, &desc_off);
      if (next == 0) return Error::Invalid("malformed note at offset " + std::to_string(off));
      CoreNote n;
      const char* base = static_cast<const char*>(data->d_buf);
      if (nh.n_namesz > 0) n.name.assign(base + name_off, strnlen(base + name_off, nh.n_namesz));
      n.type = nh.n_type;
      n.desc.assign(base + desc_off, base + desc_off + nh.n_descsz);
      core.notes.push_back(std::move(n));
      off = next;
    }
  }
  return core;
}

Result<CoreFile> ParseCoreFile(const std::string& path) {
  CPPDIAG_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, size_t{8} << 30));
  return ParseCore(std::vector<uint8_t>(text.begin(), text.end()));
}

}  // namespace cppdiag::dump::testing
