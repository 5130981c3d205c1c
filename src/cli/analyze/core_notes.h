// Decoders of an x86-64 core's notes (CoreFile::notes()): threads and their
// registers, the process, the fatal signal, auxv, the file mappings, and the
// cppdiag note. Each descriptor is checked against its layout (elf_layout.h)
// before a field is read; a malformed one is an error naming the note:
//   "note 5 (NT_FILE) is corrupt: names for only 2 of its 3 entries"
// Strings and paths view the core (they live as long as the CoreFile).
//
// Notes are attributed as the kernel and gdb write them: NT_PRFPREG,
// NT_X86_XSTATE and a per-thread NT_SIGINFO belong to the NT_PRSTATUS before
// them; of process-wide notes (NT_PRPSINFO, NT_AUXV, NT_FILE, cppdiag's) the
// first one counts.
//
//   CPPDIAG_ASSIGN_OR_RETURN(CoreFile core, CoreFile::Open(path));
//   CPPDIAG_ASSIGN_OR_RETURN(CoreNotes notes, DecodeNotes(core));
//   for (const ThreadInfo& t : notes.threads) printf("%d %#llx\n", t.tid, t.regs.rip);
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/analyze/core_file.h"
#include "cli/analyze/elf_layout.h"
#include "common/status.h"
#include "diag/dump/cppdiag_note_layout.h"

namespace cppdiag::cli::analyze {

// NT_SIGINFO: what signal ended the process (or stopped a thread).
struct SignalInfo {
  int32_t signo = 0;
  int32_t code = 0;  // si_code: SEGV_MAPERR, SI_USER...
  int32_t err = 0;   // si_errno
  // si_addr, the faulting address: meaningful for SIGSEGV, SIGBUS, SIGILL,
  // SIGFPE and SIGTRAP raised by the kernel (si_code > 0).
  std::optional<uint64_t> fault_address;
};

struct ThreadInfo {
  size_t note_index = 0;  // its NT_PRSTATUS
  pid_t tid = 0;
  pid_t ppid = 0, pgrp = 0, sid = 0;
  int32_t signal = 0;  // pr_cursig: the signal being handled (the fatal one, in a crash)
  uint64_t sigpend = 0, sighold = 0;
  int64_t utime_us = 0, stime_us = 0;
  X86Registers regs{};
  bool fpvalid = false;               // pr_fpvalid
  bool has_fpregs = false;            // an NT_PRFPREG follows
  size_t xstate_size = 0;             // bytes of its NT_X86_XSTATE, 0: none
  uint64_t xcr0 = 0;                  // from the XSAVE area
  std::optional<SignalInfo> siginfo;  // an NT_SIGINFO after its NT_PRSTATUS
};

// NT_PRPSINFO.
struct ProcessInfo {
  char state = 0;
  char sname = 0;  // 'R', 'S', 'D', 'T', 'Z'
  bool zombie = false;
  int32_t nice = 0;
  uint64_t flag = 0;
  uint32_t uid = 0, gid = 0;
  pid_t pid = 0, ppid = 0, pgrp = 0, sid = 0;
  std::string_view fname;   // the command name (up to 16 bytes)
  std::string_view psargs;  // the start of the command line (up to 80 bytes)
};

struct AuxvEntry {
  uint64_t type = 0;  // AT_*
  uint64_t value = 0;
};

// One NT_FILE entry: a file-backed mapping.
struct FileMapping {
  uint64_t start = 0, end = 0;
  uint64_t file_offset = 0;  // bytes (the note stores pages)
  std::string_view path;
};

struct FileNote {
  uint64_t page_size = 0;
  std::vector<FileMapping> mappings;
};

struct CoreNotes {
  std::vector<ThreadInfo> threads;  // in the core's order: the crashing (dumping) thread first
  std::optional<ProcessInfo> process;
  std::optional<SignalInfo> siginfo;  // the first NT_SIGINFO: the signal that caused the dump
  std::optional<std::vector<AuxvEntry>> auxv;
  std::optional<FileNote> files;
  std::optional<dump::CppdiagInfo> cppdiag;  // present in cppdiag's own dumps
};

// Decodes every note it knows; other notes are left alone.
Result<CoreNotes> DecodeNotes(const CoreFile& core);

// The decoders DecodeNotes uses, one note each.
Result<ThreadInfo> DecodePrstatus(const CoreNote& note);
Result<ProcessInfo> DecodePrpsinfo(const CoreNote& note);
Result<SignalInfo> DecodeSiginfo(const CoreNote& note);
Result<std::vector<AuxvEntry>> DecodeAuxv(const CoreNote& note);
Result<FileNote> DecodeFileNote(const CoreNote& note);
Result<dump::CppdiagInfo> DecodeCppdiagNote(const CoreNote& note);

// "NT_PRSTATUS", "NT_X86_XSTATE", "CPPDIAG info", or "LINUX type 0x203"
// (an unknown owner through Printable).
std::string NoteTypeName(const CoreNote& note);

// `s` safe to print on a terminal: bytes outside printable ASCII, and the
// backslash, as \xNN (so "\\" for a backslash). Every string a core holds
// (paths, psargs, fname, note owners, the cppdiag reason) is the target's:
// pass it through this before it reaches a terminal, or escape sequences in a
// hostile core would drive the terminal of whoever runs dump analyze.
std::string Printable(std::string_view s);

}  // namespace cppdiag::cli::analyze
