#include "cli/heap/symbolizer.h"

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <unistd.h>
#include <zlib.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string_view>

#include "cli/target_root.h"
#include "common/io.h"

namespace cppdiag::cli::heap {
namespace {

std::string Hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

std::string BaseName(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string StringAttr(Dwarf_Die* die, unsigned name) {
  Dwarf_Attribute attr;
  if (dwarf_attr_integrate(die, name, &attr) == nullptr) return {};
  const char* s = dwarf_formstring(&attr);
  return s ? s : "";
}

// A DWARF function's mangled name if it has one, else its plain name.
std::string DieName(Dwarf_Die* die) {
  std::string name = StringAttr(die, DW_AT_linkage_name);
  if (name.empty()) name = StringAttr(die, DW_AT_MIPS_linkage_name);
  if (name.empty()) name = StringAttr(die, DW_AT_name);
  return name;
}

uint64_t UdataAttr(Dwarf_Die* die, unsigned name) {
  Dwarf_Attribute attr;
  Dwarf_Word v = 0;
  if (dwarf_attr(die, name, &attr) == nullptr || dwarf_formudata(&attr, &v) != 0) return 0;
  return v;
}

// The DIE a function's name and parents are on: its abstract origin (an
// inlined instance), then its declaration (an out-of-class definition).
Dwarf_Die Origin(Dwarf_Die* die) {
  Dwarf_Die out = *die;
  for (unsigned attr_name : {DW_AT_abstract_origin, DW_AT_specification}) {
    Dwarf_Attribute attr;
    Dwarf_Die next;
    if (dwarf_attr(&out, attr_name, &attr) != nullptr && dwarf_formref_die(&attr, &next)) {
      out = next;
    }
  }
  return out;
}

// A function's demangled name from DWARF: its linkage name when it has one,
// else its name qualified by the namespaces and classes around it.
std::string QualifiedName(Dwarf_Die* die) {
  std::string linkage = StringAttr(die, DW_AT_linkage_name);
  if (linkage.empty()) linkage = StringAttr(die, DW_AT_MIPS_linkage_name);
  if (!linkage.empty()) return Demangle(linkage);
  Dwarf_Die origin = Origin(die);
  std::string name = StringAttr(&origin, DW_AT_name);
  Dwarf_Die* chain = nullptr;
  int n = dwarf_getscopes_die(&origin, &chain);
  for (int i = 1; i < n; ++i) {
    int tag = dwarf_tag(&chain[i]);
    if (tag != DW_TAG_namespace && tag != DW_TAG_class_type && tag != DW_TAG_structure_type &&
        tag != DW_TAG_union_type) {
      continue;
    }
    const char* scope = dwarf_diename(&chain[i]);
    name = std::string(scope ? scope : "(anonymous namespace)") + "::" + name;
  }
  std::free(chain);
  return name;
}

}  // namespace

std::string Demangle(const std::string& name) {
  if (name.rfind("_Z", 0) != 0) return name;
  int status = 0;
  char* out = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
  if (out == nullptr || status != 0) {
    std::free(out);
    return name;
  }
  std::string result(out);
  std::free(out);
  return result;
}

namespace {

uint32_t Crc32(int fd) {
  uLong crc = crc32(0, nullptr, 0);
  char buf[64 * 1024];
  for (off_t at = 0;;) {
    ssize_t n = HANDLE_EINTR(::pread(fd, buf, sizeof buf, at));
    if (n <= 0) break;
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buf), static_cast<uInt>(n));
    at += n;
  }
  return static_cast<uint32_t>(crc);
}

// "/path (deleted)" in /proc/<pid>/maps, a file replaced since it was
// mapped: the path is tried anyway (it may be the same build).
std::string WithoutDeleted(std::string path) {
  constexpr std::string_view kDeleted = " (deleted)";
  if (path.size() > kDeleted.size() &&
      path.compare(path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
    path.resize(path.size() - kDeleted.size());
  }
  return path;
}

}  // namespace

// A separate debug file
// by build ID in this machine's debug directories (a name made of hex
// digits, in our own filesystem), else by .gnu_debuglink under the
// target's root (`*userdata`), as a regular file, its CRC checked. Not
// dwfl_standard_find_debuginfo: it opens the link's name, which is the
// target's to choose ("../../dev/..." or a FIFO), with a plain open(2).
int FindDebuginfoUnderRoot(Dwfl_Module* mod, void** userdata, const char* modname, Dwarf_Addr base,
                           const char* file_name, const char* debuglink, GElf_Word crc,
                           char** debuginfo_file_name) {
  int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name, debuglink, crc,
                                        debuginfo_file_name);
  if (fd >= 0 || debuglink == nullptr || *debuglink == '\0' || file_name == nullptr ||
      *userdata == nullptr) {
    return fd;
  }
  const auto* root = static_cast<const TargetRoot*>(*userdata);
  std::string link = debuglink, dir = file_name;
  dir.resize(dir.rfind('/') + 1);  // file_name: the path as the target sees it
  std::vector<std::string> candidates;
  if (link.front() == '/') {
    candidates = {link};  // a dwz alternate file names itself so
  } else if (link.find('/') == std::string::npos) {
    candidates = {dir + link, dir + ".debug/" + link, "/usr/lib/debug" + dir + link};
  }
  for (const auto& c : candidates) {
    auto f = root->OpenRegularFile(c, LastLink::kFollow);
    if (!f || (crc != 0 && Crc32(f->get()) != crc)) continue;
    *debuginfo_file_name = ::strdup(c.c_str());
    return f->release();
  }
  errno = 0;
  return -1;
}

bool ElfLoadBias(int fd, uint64_t start, uint64_t offset, uint64_t* bias) {
  elf_version(EV_CURRENT);
  Elf* elf = elf_begin(fd, ELF_C_READ, nullptr);
  if (elf == nullptr) return false;
  size_t n = 0;
  bool found = false;
  if (elf_getphdrnum(elf, &n) == 0) {
    for (size_t i = 0; i < n && !found; ++i) {
      GElf_Phdr ph;
      if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_LOAD) continue;
      uint64_t page = ph.p_align > 1 ? ph.p_align : 4096;
      uint64_t seg_off = ph.p_offset & ~(page - 1);
      uint64_t seg_vaddr = ph.p_vaddr & ~(page - 1);
      if (offset >= seg_off && offset < ph.p_offset + ph.p_filesz) {
        *bias = start - (seg_vaddr + (offset - seg_off));
        found = true;
      }
    }
  }
  elf_end(elf);
  return found;
}

std::vector<SymbolFrame> FramesInModule(Dwfl_Module* mod, uint64_t address, bool* has_lines) {
  std::vector<SymbolFrame> frames;
  GElf_Off offset = 0;
  GElf_Sym sym;
  const char* symbol = dwfl_module_addrinfo(mod, address, &offset, &sym, nullptr, nullptr, nullptr);
  if (symbol == nullptr) return frames;
  std::string file;
  int line = 0;
  if (Dwfl_Line* l = dwfl_module_getsrc(mod, address)) {
    const char* f = dwfl_lineinfo(l, nullptr, &line, nullptr, nullptr, nullptr);
    if (f) file = f;
    if (has_lines != nullptr) *has_lines = true;
  }
  // Inlined functions: the innermost scope at the address that is a
  // function, then up through each inlined subroutine's concrete parents
  // (dwarf_getscopes reports an inlined function's abstract scopes, not its
  // caller's); each call site is where its caller was.
  Dwarf_Addr bias = 0;
  if (Dwarf_Die* cu = dwfl_module_addrdie(mod, address, &bias)) {
    Dwarf_Files* files = nullptr;
    size_t nfiles = 0;
    bool have_files = dwarf_getsrcfiles(cu, &files, &nfiles) == 0;
    Dwarf_Die die;
    bool have_die = false;
    Dwarf_Die* scopes = nullptr;
    int n = dwarf_getscopes(cu, address - bias, &scopes);
    for (int i = 0; i < n && !have_die; ++i) {
      int tag = dwarf_tag(&scopes[i]);
      if (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_subprogram) {
        die = scopes[i];
        have_die = true;
      }
    }
    std::free(scopes);
    for (int depth = 0; have_die && dwarf_tag(&die) == DW_TAG_inlined_subroutine && depth < 64;
         ++depth) {
      std::string name = DieName(&die);
      frames.push_back({QualifiedName(&die), name, file, line});
      uint64_t call_file = UdataAttr(&die, DW_AT_call_file);
      const char* caller_file = have_files && call_file < nfiles
                                    ? dwarf_filesrc(files, call_file, nullptr, nullptr)
                                    : nullptr;
      file = caller_file ? caller_file : "";
      line = static_cast<int>(UdataAttr(&die, DW_AT_call_line));
      Dwarf_Die* chain = nullptr;
      int m = dwarf_getscopes_die(&die, &chain);
      have_die = false;
      for (int j = 1; j < m && !have_die; ++j) {
        int tag = dwarf_tag(&chain[j]);
        if (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_subprogram) {
          die = chain[j];
          have_die = true;
        }
      }
      std::free(chain);
    }
  }
  frames.push_back({Demangle(symbol), symbol, file, line});
  return frames;
}

struct Symbolizer::State {
  Dwfl_Callbacks callbacks{};
  char* debuginfo_path = nullptr;
  Dwfl* dwfl = nullptr;
  std::optional<TargetRoot> root;  // outlives dwfl: its callbacks use it
  std::vector<bool> opened;        // per mapping
  std::map<size_t, bool> has_symbols, has_lines;
  ~State() {
    if (dwfl) dwfl_end(dwfl);
  }
};

Symbolizer::Symbolizer(std::vector<cppdiag::heap::HeapMapping> mappings, std::string root)
    : mappings_(std::move(mappings)), root_(std::move(root)), state_(std::make_unique<State>()) {
  state_->callbacks.find_elf = dwfl_build_id_find_elf;
  state_->callbacks.find_debuginfo = FindDebuginfoUnderRoot;
  state_->callbacks.section_address = dwfl_offline_section_address;
  state_->callbacks.debuginfo_path = &state_->debuginfo_path;
  state_->opened.assign(mappings_.size(), false);
  // The paths are the target's: opened only under its root, only if they
  // are regular files (a FIFO there would block us for ever, a device
  // would be opened), and handed to libelf and libdwfl as descriptors.
  // Without access to its root (another uid's process that is not
  // dumpable), the same rules in our own filesystem.
  auto opened_root = TargetRoot::Open(root_.empty() ? "/" : root_);
  if (!opened_root && !root_.empty()) opened_root = TargetRoot::Open("/");
  if (!opened_root) return;
  state_->root.emplace(std::move(*opened_root));
  state_->dwfl = dwfl_begin(&state_->callbacks);
  if (state_->dwfl == nullptr) return;
  dwfl_report_begin(state_->dwfl);
  std::map<std::pair<std::string, uint64_t>, Dwfl_Module*> reported;
  for (size_t i = 0; i < mappings_.size(); ++i) {
    const auto& m = mappings_[i];
    if (m.path.empty() || m.path[0] != '/') continue;  // [vdso], anonymous code
    std::string target_path = WithoutDeleted(m.path);
    auto fd = state_->root->OpenRegularFile(target_path);
    uint64_t bias = 0;
    if (!fd || !ElfLoadBias(fd->get(), m.start, m.offset, &bias)) continue;
    auto key = std::make_pair(m.path, bias);
    Dwfl_Module* mod = nullptr;
    if (auto it = reported.find(key); it != reported.end()) {
      mod = it->second;
    } else {
      // The file's name is the target's path: FindDebuginfo looks for its
      // debug link beside it, under the root. On success libdwfl owns fd.
      mod = dwfl_report_elf(state_->dwfl, BaseName(m.path).c_str(), target_path.c_str(), fd->get(),
                            bias, true);
      if (mod != nullptr) {
        (void)fd->release();
        void** userdata = nullptr;
        dwfl_module_info(mod, &userdata, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
        if (userdata != nullptr) *userdata = &*state_->root;
      }
      reported[key] = mod;
    }
    state_->opened[i] = mod != nullptr;
  }
  dwfl_report_end(state_->dwfl, nullptr, nullptr);
}

Symbolizer::~Symbolizer() = default;

bool Symbolizer::HasSymbols(size_t i) const {
  auto it = state_->has_symbols.find(i);
  return it != state_->has_symbols.end() && it->second;
}

bool Symbolizer::HasLines(size_t i) const {
  auto it = state_->has_lines.find(i);
  return it != state_->has_lines.end() && it->second;
}

SymbolizedAddress Symbolizer::Symbolize(uint64_t address) {
  SymbolizedAddress out;
  for (size_t i = 0; i < mappings_.size(); ++i) {
    if (address >= mappings_[i].start && address < mappings_[i].end) {
      out.mapping_index = static_cast<int>(i);
      break;
    }
  }
  Dwfl_Module* mod = nullptr;
  if (state_->dwfl && out.mapping_index >= 0 &&
      state_->opened[static_cast<size_t>(out.mapping_index)]) {
    mod = dwfl_addrmodule(state_->dwfl, address);
  }
  std::vector<SymbolFrame> frames;
  bool has_lines = false;
  if (mod != nullptr) frames = FramesInModule(mod, address, &has_lines);
  if (frames.empty()) {
    std::string where = out.mapping_index >= 0
                            ? BaseName(mappings_[static_cast<size_t>(out.mapping_index)].path)
                            : "?";
    out.frames.push_back({Hex(address) + " in " + where, "", "", 0});
    return out;
  }
  out.resolved = true;
  auto index = static_cast<size_t>(out.mapping_index);
  state_->has_symbols[index] = true;
  if (has_lines) state_->has_lines[index] = true;
  out.frames = std::move(frames);
  return out;
}

}  // namespace cppdiag::cli::heap
