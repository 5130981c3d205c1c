#include "cli/analyze/core_notes.h"

#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

namespace cppdiag::cli::analyze {
namespace {

bool Is(const CoreNote& n, std::string_view owner, uint32_t type) {
  return n.name == owner && n.type == type;
}

Error Corrupt(const CoreNote& note, const std::string& why) {
  return Error::Invalid(
      fmt::format("note {} ({}) is corrupt: {}", note.index, NoteTypeName(note), why));
}

Status CheckSize(const CoreNote& note, size_t expected, const char* what) {
  if (note.desc.size() == expected) return OkStatus();
  return Corrupt(note,
                 fmt::format("{} bytes, an x86-64 {} has {}", note.desc.size(), what, expected));
}

// A fixed char field, up to its first NUL.
std::string_view FixedString(std::span<const uint8_t> desc, size_t offset, size_t size) {
  const char* p = reinterpret_cast<const char*>(desc.data() + offset);
  return {p, strnlen(p, size)};
}

int64_t Microseconds(std::span<const uint8_t> d, size_t timeval_offset) {
  // Saturating: a hostile timeval must not overflow.
  auto sec = LoadLe<int64_t>(d, timeval_offset);
  auto usec = LoadLe<int64_t>(d, timeval_offset + 8);
  int64_t out;
  if (__builtin_mul_overflow(sec, int64_t{1000000}, &out) ||
      __builtin_add_overflow(out, usec, &out)) {
    return sec < 0 ? INT64_MIN : INT64_MAX;
  }
  return out;
}

bool HasFaultAddress(int32_t signo, int32_t code) {
  if (code <= 0) return false;  // sent by a process (SI_USER, SI_QUEUE, SI_TKILL...)
  return signo == SIGSEGV || signo == SIGBUS || signo == SIGILL || signo == SIGFPE ||
         signo == SIGTRAP;
}

}  // namespace

std::string Printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

std::string NoteTypeName(const CoreNote& n) {
  if (n.name == kOwnerCore) {
    switch (n.type) {
      case NT_PRSTATUS:
        return "NT_PRSTATUS";
      case NT_PRFPREG:
        return "NT_PRFPREG";
      case NT_PRPSINFO:
        return "NT_PRPSINFO";
      case NT_AUXV:
        return "NT_AUXV";
      case NT_SIGINFO:
        return "NT_SIGINFO";
      case NT_FILE:
        return "NT_FILE";
    }
  } else if (n.name == kOwnerLinux && n.type == NT_X86_XSTATE) {
    return "NT_X86_XSTATE";
  } else if (n.name == dump::kCppdiagNoteName && n.type == dump::kNtCppdiagInfo) {
    return "CPPDIAG info";
  }
  return fmt::format("{} type {:#x}", n.name.empty() ? "unnamed" : Printable(n.name), n.type);
}

Result<ThreadInfo> DecodePrstatus(const CoreNote& note) {
  CPPDIAG_RETURN_IF_ERROR(CheckSize(note, prstatus::kSize, "prstatus"));
  std::span<const uint8_t> d = note.desc;
  ThreadInfo t;
  t.note_index = note.index;
  t.signal = LoadLe<int16_t>(d, prstatus::kCursig);
  t.sigpend = LoadLe<uint64_t>(d, prstatus::kSigpend);
  t.sighold = LoadLe<uint64_t>(d, prstatus::kSighold);
  t.tid = LoadLe<int32_t>(d, prstatus::kPid);
  t.ppid = LoadLe<int32_t>(d, prstatus::kPpid);
  t.pgrp = LoadLe<int32_t>(d, prstatus::kPgrp);
  t.sid = LoadLe<int32_t>(d, prstatus::kSid);
  t.utime_us = Microseconds(d, prstatus::kUtime);
  t.stime_us = Microseconds(d, prstatus::kStime);
  std::memcpy(&t.regs, d.data() + prstatus::kRegs, sizeof t.regs);
  t.fpvalid = LoadLe<int32_t>(d, prstatus::kFpvalid) != 0;
  if (t.tid <= 0) return Corrupt(note, fmt::format("thread id {}", t.tid));
  return t;
}

Result<ProcessInfo> DecodePrpsinfo(const CoreNote& note) {
  CPPDIAG_RETURN_IF_ERROR(CheckSize(note, prpsinfo::kSize, "prpsinfo"));
  std::span<const uint8_t> d = note.desc;
  ProcessInfo p;
  p.state = static_cast<char>(d[prpsinfo::kState]);
  p.sname = static_cast<char>(d[prpsinfo::kSname]);
  p.zombie = d[prpsinfo::kZomb] != 0;
  // NOLINTNEXTLINE(bugprone-signed-char-misuse): a number (-20..19), not a character
  p.nice = LoadLe<int8_t>(d, prpsinfo::kNice);
  p.flag = LoadLe<uint64_t>(d, prpsinfo::kFlag);
  p.uid = LoadLe<uint32_t>(d, prpsinfo::kUid);
  p.gid = LoadLe<uint32_t>(d, prpsinfo::kGid);
  p.pid = LoadLe<int32_t>(d, prpsinfo::kPid);
  p.ppid = LoadLe<int32_t>(d, prpsinfo::kPpid);
  p.pgrp = LoadLe<int32_t>(d, prpsinfo::kPgrp);
  p.sid = LoadLe<int32_t>(d, prpsinfo::kSid);
  p.fname = FixedString(d, prpsinfo::kFname, prpsinfo::kFnameSize);
  p.psargs = FixedString(d, prpsinfo::kPsargs, prpsinfo::kPsargsSize);
  return p;
}

Result<SignalInfo> DecodeSiginfo(const CoreNote& note) {
  CPPDIAG_RETURN_IF_ERROR(CheckSize(note, siginfo::kSize, "siginfo"));
  SignalInfo s;
  s.signo = LoadLe<int32_t>(note.desc, siginfo::kSigno);
  s.err = LoadLe<int32_t>(note.desc, siginfo::kErrno);
  s.code = LoadLe<int32_t>(note.desc, siginfo::kCode);
  if (HasFaultAddress(s.signo, s.code))
    s.fault_address = LoadLe<uint64_t>(note.desc, siginfo::kAddr);
  return s;
}

Result<std::vector<AuxvEntry>> DecodeAuxv(const CoreNote& note) {
  if (note.desc.size() % kAuxvEntrySize != 0) {
    return Corrupt(
        note, fmt::format("{} bytes, not a whole number of 16-byte entries", note.desc.size()));
  }
  std::vector<AuxvEntry> out;
  for (size_t off = 0; off < note.desc.size(); off += kAuxvEntrySize) {
    AuxvEntry e{LoadLe<uint64_t>(note.desc, off), LoadLe<uint64_t>(note.desc, off + 8)};
    if (e.type == AT_NULL) break;
    out.push_back(e);
  }
  return out;
}

Result<FileNote> DecodeFileNote(const CoreNote& note) {
  std::span<const uint8_t> d = note.desc;
  if (d.size() < file_note::kHeaderSize) {
    return Corrupt(note, fmt::format("{} bytes, shorter than its 16-byte header", d.size()));
  }
  uint64_t count = LoadLe<uint64_t>(d, 0);
  FileNote out;
  out.page_size = LoadLe<uint64_t>(d, 8);
  if (out.page_size == 0 || (out.page_size & (out.page_size - 1)) != 0) {
    return Corrupt(note, fmt::format("page size {} is not a power of two", out.page_size));
  }
  uint64_t room = (d.size() - file_note::kHeaderSize) / file_note::kEntrySize;
  if (count > room) {
    return Corrupt(note, fmt::format("{} entries do not fit in {} bytes", count, d.size()));
  }
  out.mappings.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    size_t off = file_note::kHeaderSize + i * file_note::kEntrySize;
    FileMapping m;
    m.start = LoadLe<uint64_t>(d, off);
    m.end = LoadLe<uint64_t>(d, off + 8);
    uint64_t pages = LoadLe<uint64_t>(d, off + 16);
    if (m.end < m.start) {
      return Corrupt(
          note, fmt::format("entry {} ends ({:#x}) before it starts ({:#x})", i, m.end, m.start));
    }
    if (__builtin_mul_overflow(pages, out.page_size, &m.file_offset)) {
      return Corrupt(note, fmt::format("entry {}'s file offset ({} pages) overflows", i, pages));
    }
    out.mappings.push_back(m);
  }
  // The names: one NUL-terminated string per entry, each inside the note.
  size_t pos = file_note::kHeaderSize + count * file_note::kEntrySize;
  for (uint64_t i = 0; i < count; ++i) {
    if (pos >= d.size())
      return Corrupt(note, fmt::format("names for only {} of its {} entries", i, count));
    const void* nul = std::memchr(d.data() + pos, '\0', d.size() - pos);
    if (nul == nullptr) {
      return Corrupt(note, fmt::format("name {} runs past the end of the note", i));
    }
    size_t len = static_cast<const uint8_t*>(nul) - (d.data() + pos);
    out.mappings[i].path = std::string_view(reinterpret_cast<const char*>(d.data() + pos), len);
    pos += len + 1;
  }
  std::span<const uint8_t> rest = d.subspan(pos);
  if (!std::all_of(rest.begin(), rest.end(), [](uint8_t b) { return b == 0; })) {
    return Corrupt(note, fmt::format("more names than its {} entries", count));
  }
  return out;
}

Result<dump::CppdiagInfo> DecodeCppdiagNote(const CoreNote& note) {
  dump::CppdiagInfo info;
  if (!dump::DecodeCppdiagInfo(note.desc, &info)) {
    uint32_t version = note.desc.size() >= 4 ? LoadLe<uint32_t>(note.desc, 0) : 0;
    uint32_t size = note.desc.size() >= 8 ? LoadLe<uint32_t>(note.desc, 4) : 0;
    return Corrupt(note, fmt::format("version {}, size {} in a descriptor of {} bytes", version,
                                     size, note.desc.size()));
  }
  return info;
}

Result<CoreNotes> DecodeNotes(const CoreFile& core) {
  CoreNotes out;
  std::unordered_map<pid_t, size_t> tid_note;  // tid -> its NT_PRSTATUS
  ThreadInfo* current = nullptr;               // the thread the notes now describe: threads.back()
  auto owned_by_thread = [&](const CoreNote& n) -> Status {
    if (current == nullptr) return Corrupt(n, "it comes before any NT_PRSTATUS");
    return OkStatus();
  };
  for (const CoreNote& n : core.notes()) {
    if (Is(n, kOwnerCore, NT_PRSTATUS)) {
      CPPDIAG_ASSIGN_OR_RETURN(ThreadInfo t, DecodePrstatus(n));
      auto [it, fresh] = tid_note.emplace(t.tid, n.index);
      if (!fresh) {
        return Corrupt(n, fmt::format("thread {} again (first in note {})", t.tid, it->second));
      }
      out.threads.push_back(t);
      current = &out.threads.back();  // (push_back may move the others: only back() is kept)
    } else if (Is(n, kOwnerCore, NT_PRFPREG)) {
      CPPDIAG_RETURN_IF_ERROR(owned_by_thread(n));
      CPPDIAG_RETURN_IF_ERROR(CheckSize(n, kFpregsetSize, "FXSAVE area"));
      current->has_fpregs = true;
    } else if (Is(n, kOwnerLinux, NT_X86_XSTATE)) {
      CPPDIAG_RETURN_IF_ERROR(owned_by_thread(n));
      if (n.desc.size() < kXstateMinSize) {
        return Corrupt(n, fmt::format("{} bytes, an XSAVE area has at least {}", n.desc.size(),
                                      kXstateMinSize));
      }
      current->xstate_size = n.desc.size();
      current->xcr0 = LoadLe<uint64_t>(n.desc, kXstateXcr0Offset);
    } else if (Is(n, kOwnerCore, NT_SIGINFO)) {
      CPPDIAG_ASSIGN_OR_RETURN(SignalInfo s, DecodeSiginfo(n));
      if (!out.siginfo) out.siginfo = s;
      if (current != nullptr && !current->siginfo) current->siginfo = s;
    } else if (Is(n, kOwnerCore, NT_PRPSINFO)) {
      CPPDIAG_ASSIGN_OR_RETURN(ProcessInfo p, DecodePrpsinfo(n));
      if (!out.process) out.process = p;
    } else if (Is(n, kOwnerCore, NT_AUXV)) {
      CPPDIAG_ASSIGN_OR_RETURN(std::vector<AuxvEntry> a, DecodeAuxv(n));
      if (!out.auxv) out.auxv = std::move(a);
    } else if (Is(n, kOwnerCore, NT_FILE)) {
      CPPDIAG_ASSIGN_OR_RETURN(FileNote f, DecodeFileNote(n));
      if (!out.files) out.files = std::move(f);
    } else if (Is(n, dump::kCppdiagNoteName, dump::kNtCppdiagInfo)) {
      CPPDIAG_ASSIGN_OR_RETURN(dump::CppdiagInfo info, DecodeCppdiagNote(n));
      if (!out.cppdiag) out.cppdiag = info;
    }
  }
  return out;
}

}  // namespace cppdiag::cli::analyze
