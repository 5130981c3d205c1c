// maps: the process's mappings as the core records them: each PT_LOAD's
// range, permissions, size, the file it maps (NT_FILE) and how much of it
// the dump stored; then files NT_FILE lists that no segment covers.
#include <elf.h>
#include <fmt/format.h>

#include "cli/analyze/command.h"
#include "cli/analyze/format.h"

namespace cppdiag::cli::analyze {
namespace {

std::string Perms(uint32_t flags) {
  std::string p = "---";
  if (flags & PF_R) p[0] = 'r';
  if (flags & PF_W) p[1] = 'w';
  if (flags & PF_X) p[2] = 'x';
  return p;
}

const FileMapping* FileAt(const CoreNotes& notes, uint64_t start) {
  if (!notes.files) return nullptr;
  for (const FileMapping& m : notes.files->mappings) {
    if (start >= m.start && start < m.end) return &m;
  }
  return nullptr;
}

Result<CommandOutput> Maps(Session& session, const CommandArgs& args) {
  if (!args.empty()) return Error::Invalid("takes no arguments");
  const CoreFile& core = session.core();
  CommandOutput out;
  out.json = nlohmann::json::array();
  out.text = fmt::format("{:<18} {:<18} {:<4} {:>10} {:<8} {}\n", "START", "END", "PERM", "SIZE",
                         "IN DUMP", "FILE");
  for (const LoadSegment& s : core.loads()) {
    const FileMapping* f = FileAt(session.notes(), s.vaddr);
    std::string stored = s.filesz == s.memsz ? "all" : s.filesz == 0 ? "no" : HumanBytes(s.filesz);
    out.text +=
        fmt::format("{} {} {:<4} {:>10} {:<8} {}\n", Address(s.vaddr), Address(s.end()),
                    Perms(s.flags), HumanBytes(s.memsz), stored, f ? Printable(f->path) : "");
    nlohmann::json j = {{"start", s.vaddr},
                        {"end", s.end()},
                        {"perms", Perms(s.flags)},
                        {"size", s.memsz},
                        {"stored_bytes", s.filesz}};
    if (f) {
      j["file"] = f->path;
      j["file_offset"] = f->file_offset + (s.vaddr - f->start);
    }
    out.json.push_back(std::move(j));
  }
  if (session.notes().files) {
    for (const FileMapping& m : session.notes().files->mappings) {
      if (core.FindLoad(m.start) != nullptr) continue;
      out.text += fmt::format("{} {} {:<4} {:>10} {:<8} {}\n", Address(m.start), Address(m.end),
                              "?", HumanBytes(m.end - m.start), "no seg", Printable(m.path));
      out.json.push_back({{"start", m.start},
                          {"end", m.end},
                          {"size", m.end - m.start},
                          {"stored_bytes", 0},
                          {"no_segment", true},
                          {"file", m.path},
                          {"file_offset", m.file_offset}});
    }
  }
  return out;
}

}  // namespace

const Command kMapsCommand{"maps", "maps",
                           "mappings: range, permissions, size, whether the dump holds their "
                           "bytes, file",
                           Maps};

}  // namespace cppdiag::cli::analyze
