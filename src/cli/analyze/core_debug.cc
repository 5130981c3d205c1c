#include "cli/analyze/core_debug.h"

#include <elf.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fmt/format.h>
#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include "cli/target_root.h"

namespace cppdiag::cli::analyze {
namespace {

std::string BaseName(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string Hex(const unsigned char* bits, int len) {
  std::string out;
  for (int i = 0; i < len; ++i) out += fmt::format("{:02x}", bits[i]);
  return out;
}

// "/usr/lib/x (deleted)": a file replaced since it was mapped; the path is
// tried anyway (it may hold the same build).
std::string WithoutDeleted(std::string path) {
  constexpr std::string_view kDeleted = " (deleted)";
  if (path.size() > kDeleted.size() && path.ends_with(kDeleted)) {
    path.resize(path.size() - kDeleted.size());
  }
  return path;
}

std::optional<uint64_t> AuxvValue(const CoreNotes& notes, uint64_t type) {
  if (!notes.auxv) return std::nullopt;
  for (const AuxvEntry& e : *notes.auxv) {
    if (e.type == type) return e.value;
  }
  return std::nullopt;
}

// The build id in a module's ELF headers as the core stored them (its first
// page, mapped from file offset 0: the program headers and the build-id note
// lie there in any linker's output); empty when the page is not stored.
std::string BuildIdInCore(const CoreFile& core, uint64_t start) {
  uint8_t page[4096];
  auto stored = core.CopyMemory(start, page);
  if (!stored.ok() || *stored < sizeof(Elf64_Ehdr)) return {};
  const size_t n = *stored;
  Elf64_Ehdr eh;
  std::memcpy(&eh, page, sizeof eh);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64)
    return {};
  for (uint64_t i = 0; i < eh.e_phnum && i < 64; ++i) {
    Elf64_Phdr ph;
    uint64_t at = eh.e_phoff + i * sizeof ph;
    if (at + sizeof ph > n) break;
    std::memcpy(&ph, page + at, sizeof ph);
    if (ph.p_type != PT_NOTE || ph.p_offset > n || ph.p_filesz > n - ph.p_offset) continue;
    for (uint64_t q = ph.p_offset; q + sizeof(Elf64_Nhdr) <= ph.p_offset + ph.p_filesz;) {
      Elf64_Nhdr nh;
      std::memcpy(&nh, page + q, sizeof nh);
      uint64_t name = q + sizeof nh, desc = name + ((nh.n_namesz + 3ULL) & ~3ULL);
      uint64_t next = desc + ((nh.n_descsz + 3ULL) & ~3ULL);
      if (next > ph.p_offset + ph.p_filesz) break;
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
          std::memcmp(page + name, "GNU", 4) == 0) {
        return Hex(page + desc, static_cast<int>(nh.n_descsz));
      }
      q = next;
    }
  }
  return {};
}

// The build id of the ELF file open at `fd`; empty: none.
std::string BuildIdInFile(int fd) {
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (elf == nullptr) return {};
  const void* bits = nullptr;
  ssize_t len = dwelf_elf_gnu_build_id(elf, &bits);
  std::string out =
      len > 0 ? Hex(static_cast<const unsigned char*>(bits), static_cast<int>(len)) : "";
  elf_end(elf);
  return out;
}

}  // namespace

struct CoreDebugInfo::State {
  Dwfl_Callbacks callbacks{};
  std::string debug_dir;  // what debuginfo_path points into
  char* debuginfo_path = nullptr;
  std::optional<TargetRoot> root;  // the sysroot; outlives dwfl (modules' userdata)
  std::optional<TargetRoot> host;  // "/": --exe's root
  Dwfl* dwfl = nullptr;
  Elf* core_elf = nullptr;
  std::string attach_error;  // empty: attached
  ~State() {
    if (dwfl != nullptr) dwfl_end(dwfl);
    if (core_elf != nullptr) elf_end(core_elf);
  }
};

CoreDebugInfo::CoreDebugInfo() : state_(std::make_unique<State>()) {}
CoreDebugInfo::~CoreDebugInfo() = default;

Result<std::unique_ptr<CoreDebugInfo>> CoreDebugInfo::Create(const CoreFile& core,
                                                             const CoreNotes& notes,
                                                             const DebugOptions& options) {
  std::unique_ptr<CoreDebugInfo> out(new CoreDebugInfo());
  State& st = *out->state_;
  CPPDIAG_ASSIGN_OR_RETURN(TargetRoot root,
                           TargetRoot::Open(options.sysroot.empty() ? "/" : options.sysroot));
  st.root.emplace(std::move(root));
  CPPDIAG_ASSIGN_OR_RETURN(TargetRoot host, TargetRoot::Open("/"));
  st.host.emplace(std::move(host));
  st.callbacks.find_elf = dwfl_build_id_find_elf;
  st.callbacks.find_debuginfo = heap::FindDebuginfoUnderRoot;
  if (!options.debug_dir.empty()) {
    st.debug_dir = options.debug_dir;
    st.debuginfo_path = st.debug_dir.data();
  }
  st.callbacks.debuginfo_path = &st.debuginfo_path;
  st.dwfl = dwfl_begin(&st.callbacks);
  if (st.dwfl == nullptr) {
    return Error::Invalid(std::string("libdwfl: ") + dwfl_errmsg(-1));
  }

  // Each file's mappings, lowest first; the executable holds AT_ENTRY.
  std::map<std::string, std::vector<const FileMapping*>> by_path;
  if (notes.files) {
    for (const FileMapping& m : notes.files->mappings) {
      if (!m.path.empty() && m.path[0] == '/') by_path[std::string(m.path)].push_back(&m);
    }
  }
  std::optional<uint64_t> entry = AuxvValue(notes, AT_ENTRY);
  dwfl_report_begin(st.dwfl);
  for (auto& [path, maps] : by_path) {
    std::sort(maps.begin(), maps.end(),
              [](const FileMapping* a, const FileMapping* b) { return a->start < b->start; });
    ModuleInfo info;
    info.path = path;
    info.name = BaseName(path);
    info.start = maps.front()->start;
    for (const FileMapping* m : maps) {
      info.end = std::max(info.end, m->end);
      if (entry && *entry >= m->start && *entry < m->end) info.executable = true;
    }
    const TargetRoot* where = &*st.root;
    std::string file = WithoutDeleted(path);
    if (info.executable && !options.executable.empty()) {
      where = &*st.host;
      file = std::filesystem::absolute(options.executable).string();
    }
    auto fd = where->OpenRegularFile(file, info.executable && !options.executable.empty()
                                               ? LastLink::kFollow
                                               : LastLink::kRefuse);
    if (!fd) {
      // A device or a FIFO (/dev/zero shared memory) is no module; a file
      // that is missing is one we could not read.
      if (fd.error().code() == EINVAL) continue;
      info.why_not = fd.error().message();
      out->modules_.push_back(std::move(info));
      continue;
    }
    uint64_t bias = 0;
    const FileMapping* first = maps.front();
    // Files that are not ELF (locale-archive, fonts, data files) are no modules.
    if (!heap::ElfLoadBias(fd->get(), first->start, first->file_offset, &bias)) continue;
    // A file of another build than the one mapped (an image updated since,
    // a wrong --sysroot) would give wrong symbols and frames: refused, said.
    if (first->file_offset == 0) {
      std::string in_core = BuildIdInCore(core, first->start), in_file = BuildIdInFile(fd->get());
      if (!in_core.empty() && !in_file.empty() && in_core != in_file) {
        info.build_id = in_core;
        info.why_not = fmt::format("{} is another build (build id {}; the core's is {}): not used",
                                   file, in_file, in_core);
        out->modules_.push_back(std::move(info));
        continue;
      }
    }
    Dwfl_Module* mod =
        dwfl_report_elf(st.dwfl, info.name.c_str(), file.c_str(), fd->get(), bias, true);
    if (mod == nullptr) {
      info.why_not = std::string("libdwfl: ") + dwfl_errmsg(-1);
      out->modules_.push_back(std::move(info));
      continue;
    }
    (void)fd->release();  // libdwfl owns it now
    info.opened = file;
    void** userdata = nullptr;
    dwfl_module_info(mod, &userdata, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    if (userdata != nullptr) *userdata = const_cast<TargetRoot*>(where);
    const unsigned char* bits = nullptr;
    GElf_Addr id_vaddr = 0;
    int len = dwfl_module_build_id(mod, &bits, &id_vaddr);
    if (len > 0) info.build_id = Hex(bits, len);
    out->modules_.push_back(std::move(info));
  }
  dwfl_report_end(st.dwfl, nullptr, nullptr);
  std::sort(out->modules_.begin(), out->modules_.end(),
            [](const ModuleInfo& a, const ModuleInfo& b) { return a.start < b.start; });

  // The unwinder reads registers and memory from the core itself.
  elf_version(EV_CURRENT);
  std::span<const uint8_t> bytes = core.bytes();
  // libelf only reads an image opened with elf_memory (a native-endian core
  // needs no conversion in place), so the read-only mapping is safe to hand it.
  st.core_elf =
      elf_memory(const_cast<char*>(reinterpret_cast<const char*>(bytes.data())), bytes.size());
  if (st.core_elf == nullptr) {
    st.attach_error = std::string("libelf: ") + elf_errmsg(-1);
  } else if (int pid = dwfl_core_file_attach(st.dwfl, st.core_elf); pid < 0) {
    st.attach_error = std::string("libdwfl cannot unwind this core: ") + dwfl_errmsg(-1);
  }
  return out;
}

const ModuleInfo* CoreDebugInfo::ModuleAt(uint64_t address) const {
  for (const ModuleInfo& m : modules_) {
    if (address >= m.start && address < m.end) return &m;
  }
  return nullptr;
}

const std::vector<ModuleInfo>& CoreDebugInfo::ModulesWithSymbols() {
  if (symbols_loaded_) return modules_;
  symbols_loaded_ = true;
  for (ModuleInfo& m : modules_) {
    if (m.opened.empty()) continue;
    Dwfl_Module* mod = dwfl_addrmodule(state_->dwfl, m.start);
    if (mod == nullptr) continue;
    m.symbols = dwfl_module_getsymtab(mod) > 0;
    Dwarf_Addr bias = 0;
    m.debug_info = dwfl_module_getdwarf(mod, &bias) != nullptr;
  }
  return modules_;
}

std::optional<CoreDebugInfo::Symbol> CoreDebugInfo::FindSymbol(std::string_view module_prefix,
                                                               std::string_view name) {
  for (const ModuleInfo& m : modules_) {
    if (m.opened.empty() || !m.name.starts_with(module_prefix)) continue;
    Dwfl_Module* mod = dwfl_addrmodule(state_->dwfl, m.start);
    if (mod == nullptr) continue;
    int n = dwfl_module_getsymtab(mod);
    for (int i = 0; i < n; ++i) {
      GElf_Sym sym;
      GElf_Addr addr = 0;
      const char* sym_name =
          dwfl_module_getsym_info(mod, i, &sym, &addr, nullptr, nullptr, nullptr);
      if (sym_name != nullptr && name == sym_name && GELF_ST_TYPE(sym.st_info) == STT_OBJECT) {
        return Symbol{.address = addr, .size = sym.st_size, .module = &m};
      }
    }
  }
  return std::nullopt;
}

const std::string& CoreDebugInfo::unwind_error() const { return state_->attach_error; }

std::string CoreDebugInfo::ModuleNameAt(uint64_t address, uint64_t* offset) {
  Dwfl_Module* mod = dwfl_addrmodule(state_->dwfl, address);
  if (mod == nullptr) return {};
  Dwarf_Addr start = 0;
  const char* name =
      dwfl_module_info(mod, nullptr, &start, nullptr, nullptr, nullptr, nullptr, nullptr);
  *offset = address - start;
  return name ? name : "";
}

std::string CoreDebugInfo::SymbolNameAt(uint64_t address) {
  Dwfl_Module* mod = dwfl_addrmodule(state_->dwfl, address);
  if (mod == nullptr) return {};
  GElf_Off offset = 0;
  GElf_Sym sym;
  const char* name = dwfl_module_addrinfo(mod, address, &offset, &sym, nullptr, nullptr, nullptr);
  return name ? name : "";
}

std::vector<heap::SymbolFrame> CoreDebugInfo::Symbolize(uint64_t address) {
  Dwfl_Module* mod = dwfl_addrmodule(state_->dwfl, address);
  if (mod == nullptr) return {};
  return heap::FramesInModule(mod, address);
}

namespace {

struct UnwindContext {
  CoreDebugInfo* self;
  std::vector<ThreadStack>* out;
  size_t max_frames;
};

int OnFrame(Dwfl_Frame* frame, void* arg) {
  auto* stack = static_cast<std::pair<ThreadStack*, size_t>*>(arg);
  Dwarf_Addr pc = 0;
  bool activation = false;
  if (!dwfl_frame_pc(frame, &pc, &activation)) return DWARF_CB_ABORT;
  stack->first->frames.push_back(
      {.pc = pc, .activation = activation, .functions = {}, .module = {}});
  return stack->first->frames.size() >= stack->second ? DWARF_CB_ABORT : DWARF_CB_OK;
}

int OnThread(Dwfl_Thread* thread, void* arg) {
  auto* ctx = static_cast<UnwindContext*>(arg);
  ThreadStack& t = ctx->out->emplace_back();
  t.tid = dwfl_thread_tid(thread);
  std::pair<ThreadStack*, size_t> frame_arg{&t, ctx->max_frames};
  int rc = dwfl_thread_getframes(thread, OnFrame, &frame_arg);
  if (rc == -1) {
    t.stopped = dwfl_errmsg(-1);
  } else if (rc != 0 && t.frames.size() >= ctx->max_frames) {
    t.stopped = fmt::format("stopped after {} frames", ctx->max_frames);
  }
  return DWARF_CB_OK;
}

}  // namespace

const std::vector<ThreadStack>& CoreDebugInfo::Backtraces(size_t max_frames) {
  if (stacks_) return *stacks_;
  stacks_.emplace();
  if (state_->attach_error.empty()) {
    UnwindContext ctx{this, &*stacks_, std::max<size_t>(max_frames, 1)};
    if (dwfl_getthreads(state_->dwfl, OnThread, &ctx) != 0 && stacks_->empty()) {
      state_->attach_error = std::string("libdwfl: ") + dwfl_errmsg(-1);
    }
  }
  for (ThreadStack& t : *stacks_) {
    for (Frame& f : t.frames) {
      uint64_t lookup = f.activation ? f.pc : f.pc - 1;
      f.functions = Symbolize(lookup);
      if (const ModuleInfo* m = ModuleAt(f.pc)) f.module = m->name;
    }
  }
  return *stacks_;
}

}  // namespace cppdiag::cli::analyze
