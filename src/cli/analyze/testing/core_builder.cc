#include "cli/analyze/testing/core_builder.h"

namespace cppdiag::cli::analyze::testing {
namespace {

template <typename T>
void Append(std::vector<uint8_t>* out, const T& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out->insert(out->end(), p, p + sizeof v);
}

void PadTo(std::vector<uint8_t>* out, size_t align) {
  while (out->size() % align != 0) out->push_back(0);
}

template <typename T>
void PutAt(std::vector<uint8_t>* d, size_t offset, T v) {
  std::memcpy(d->data() + offset, &v, sizeof v);
}

}  // namespace

CoreBuilder& CoreBuilder::Note(std::string name, uint32_t type, std::vector<uint8_t> desc) {
  notes_.push_back({std::move(name), type, std::move(desc)});
  return *this;
}

CoreBuilder& CoreBuilder::Load(uint64_t vaddr, uint64_t memsz, std::string_view data,
                               uint32_t flags) {
  loads_.push_back({vaddr, memsz, std::string(data), flags});
  return *this;
}

BuiltCore CoreBuilder::Build() const {
  BuiltCore core;
  const size_t phnum = 1 + loads_.size();
  core.phoff = kEhdrSize;
  size_t headers_end = kEhdrSize + phnum * kPhdrSize;
  if (extended_) {
    core.shoff = headers_end;
    headers_end += kShdrSize;
  }
  // Notes, then the loads' data (8-aligned), after the headers.
  std::vector<uint8_t> notes;
  for (const PendingNote& n : notes_) {
    core.note_offsets.push_back(headers_end + notes.size());
    Elf64_Nhdr h{static_cast<Elf64_Word>(n.name.size() + 1), static_cast<Elf64_Word>(n.desc.size()),
                 n.type};
    Append(&notes, h);
    notes.insert(notes.end(), n.name.begin(), n.name.end());
    notes.push_back(0);
    PadTo(&notes, 4);
    notes.insert(notes.end(), n.desc.begin(), n.desc.end());
    PadTo(&notes, 4);
  }
  core.notes_offset = headers_end;
  core.notes_size = notes.size();
  uint64_t data_at = (headers_end + notes.size() + 7) & ~uint64_t{7};
  for (const PendingLoad& l : loads_) {
    core.load_offsets.push_back(data_at);
    data_at = (data_at + l.data.size() + 7) & ~uint64_t{7};
  }

  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_CORE;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_phoff = core.phoff;
  eh.e_ehsize = kEhdrSize;
  eh.e_phentsize = kPhdrSize;
  eh.e_phnum = extended_ ? PN_XNUM : static_cast<Elf64_Half>(phnum);
  if (extended_) {
    eh.e_shoff = core.shoff;
    eh.e_shentsize = kShdrSize;
    eh.e_shnum = 1;
  }
  Append(&core.bytes, eh);
  Elf64_Phdr note{};
  note.p_type = PT_NOTE;
  note.p_offset = core.notes_offset;
  note.p_filesz = notes.size();
  note.p_align = 4;
  Append(&core.bytes, note);
  for (size_t i = 0; i < loads_.size(); ++i) {
    Elf64_Phdr ph{};
    ph.p_type = PT_LOAD;
    ph.p_flags = loads_[i].flags;
    ph.p_offset = core.load_offsets[i];
    ph.p_vaddr = loads_[i].vaddr;
    ph.p_filesz = loads_[i].data.size();
    ph.p_memsz = loads_[i].memsz;
    ph.p_align = 4096;
    Append(&core.bytes, ph);
  }
  if (extended_) {
    Elf64_Shdr sh{};
    sh.sh_info = static_cast<Elf64_Word>(phnum);
    Append(&core.bytes, sh);
  }
  core.bytes.insert(core.bytes.end(), notes.begin(), notes.end());
  for (size_t i = 0; i < loads_.size(); ++i) {
    core.bytes.resize(core.load_offsets[i], 0);
    core.bytes.insert(core.bytes.end(), loads_[i].data.begin(), loads_[i].data.end());
  }
  return core;
}

std::vector<uint8_t> PrstatusDesc(pid_t tid, int signal, uint64_t rip, uint64_t rsp) {
  std::vector<uint8_t> d(prstatus::kSize);
  PutAt<int32_t>(&d, prstatus::kInfoSigno, signal);
  PutAt<int16_t>(&d, prstatus::kCursig, static_cast<int16_t>(signal));
  PutAt<int32_t>(&d, prstatus::kPid, tid);
  PutAt<uint64_t>(&d, prstatus::kRegs + offsetof(X86Registers, rip), rip);
  PutAt<uint64_t>(&d, prstatus::kRegs + offsetof(X86Registers, rsp), rsp);
  return d;
}

std::vector<uint8_t> PrpsinfoDesc(std::string_view fname, std::string_view psargs, uint32_t uid) {
  std::vector<uint8_t> d(prpsinfo::kSize);
  d[prpsinfo::kSname] = 'R';
  PutAt<uint32_t>(&d, prpsinfo::kUid, uid);
  std::memcpy(d.data() + prpsinfo::kFname, fname.data(),
              std::min(fname.size(), prpsinfo::kFnameSize));
  std::memcpy(d.data() + prpsinfo::kPsargs, psargs.data(),
              std::min(psargs.size(), prpsinfo::kPsargsSize));
  return d;
}

std::vector<uint8_t> SiginfoDesc(int signo, int code, uint64_t addr) {
  std::vector<uint8_t> d(siginfo::kSize);
  PutAt<int32_t>(&d, siginfo::kSigno, signo);
  PutAt<int32_t>(&d, siginfo::kCode, code);
  PutAt<uint64_t>(&d, siginfo::kAddr, addr);
  return d;
}

std::vector<uint8_t> FileNoteDesc(const std::vector<FileEntry>& entries, uint64_t page_size) {
  std::vector<uint8_t> d;
  Append(&d, uint64_t{entries.size()});
  Append(&d, page_size);
  for (const FileEntry& e : entries) {
    Append(&d, e.start);
    Append(&d, e.end);
    Append(&d, e.page_offset);
  }
  for (const FileEntry& e : entries) {
    d.insert(d.end(), e.path.begin(), e.path.end());
    d.push_back(0);
  }
  return d;
}

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

}  // namespace cppdiag::cli::analyze::testing
