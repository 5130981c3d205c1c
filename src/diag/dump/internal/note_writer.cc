// Async-signal-safe (see note_writer.h).
#include "diag/dump/internal/note_writer.h"

#include <sys/procfs.h>

#include <span>

namespace cppdiag::dump::internal {
namespace {

// NT_FILE is capped like the kernel's (MAX_FILE_NOTE_SIZE).
constexpr uint64_t kMaxFileNoteSize = 4 << 20;
// Not yet in every elf.h: the kernel's note describing the XSAVE layout.
constexpr uint32_t kNtX86XsaveLayout = 0x205;

void FillPrstatus(const ProcessSnapshot& s, const ThreadSnapshot& t, elf_prstatus* pr) {
  std::memset(pr, 0, sizeof *pr);
  const ProcessInfo& p = s.process();
  // As the kernel does: every thread carries the signal that ended the process.
  int sig = s.siginfo() != nullptr ? s.siginfo()->si_signo : t.cursig;
  pr->pr_info.si_signo = sig;
  pr->pr_cursig = static_cast<short>(sig);
  pr->pr_sigpend = t.sigpend;
  pr->pr_sighold = t.sighold;
  pr->pr_pid = t.tid;
  pr->pr_ppid = p.ppid;
  pr->pr_pgrp = p.pgrp;
  pr->pr_sid = p.sid;
  pr->pr_utime.tv_sec = t.utime_us / 1000000;
  pr->pr_utime.tv_usec = t.utime_us % 1000000;
  pr->pr_stime.tv_sec = t.stime_us / 1000000;
  pr->pr_stime.tv_usec = t.stime_us % 1000000;
  static_assert(sizeof pr->pr_reg == sizeof t.regs, "pr_reg is user_regs_struct");
  std::memcpy(&pr->pr_reg, &t.regs, sizeof t.regs);
  pr->pr_fpvalid = t.has_fpregs ? 1 : 0;
}

void FillPrpsinfo(const ProcessSnapshot& s, elf_prpsinfo* ps) {
  std::memset(ps, 0, sizeof *ps);
  const ProcessInfo& p = s.process();
  ps->pr_state = 0;
  ps->pr_sname = 'R';
  ps->pr_nice = static_cast<char>(p.nice);
  ps->pr_uid = p.uid;
  ps->pr_gid = p.gid;
  ps->pr_pid = p.pid;
  ps->pr_ppid = p.ppid;
  ps->pr_pgrp = p.pgrp;
  ps->pr_sid = p.sid;
  std::memcpy(ps->pr_fname, p.comm, std::min(sizeof ps->pr_fname, sizeof p.comm));
  ps->pr_fname[sizeof ps->pr_fname - 1] = '\0';
  std::memcpy(ps->pr_psargs, p.psargs, std::min(sizeof ps->pr_psargs, sizeof p.psargs));
  ps->pr_psargs[sizeof ps->pr_psargs - 1] = '\0';
}

// NT_FILE: count, page size, (start, end, offset in pages) per file mapping,
// then the names, NUL-terminated. Returns the descriptor size.
uint64_t FileNoteSize(const ProcessSnapshot& s, size_t* count) {
  uint64_t size = 2 * sizeof(uint64_t);
  size_t n = 0;
  for (size_t i = 0; i < s.mapping_count(); ++i) {
    const MappingSnapshot& m = s.mapping(i);
    if (!m.file_backed()) continue;
    uint64_t more = 3 * sizeof(uint64_t) + m.path.size() + 1;
    if (size + more > kMaxFileNoteSize) break;
    size += more;
    ++n;
  }
  *count = n;
  return size;
}

void WriteFileNote(const ProcessSnapshot& s, NoteWriter* w) {
  size_t count = 0;
  uint64_t size = FileNoteSize(s, &count);
  w->Begin("CORE", NT_FILE, size);
  uint64_t head[2] = {count, kPageSize};
  w->Append(head, sizeof head);
  size_t n = 0;
  for (size_t i = 0; i < s.mapping_count() && n < count; ++i) {
    const MappingSnapshot& m = s.mapping(i);
    if (!m.file_backed()) continue;
    uint64_t e[3] = {m.start, m.end, m.offset / kPageSize};
    w->Append(e, sizeof e);
    ++n;
  }
  n = 0;
  for (size_t i = 0; i < s.mapping_count() && n < count; ++i) {
    const MappingSnapshot& m = s.mapping(i);
    if (!m.file_backed()) continue;
    w->Append(m.path.data(), m.path.size());
    w->Append("", 1);
    ++n;
  }
  w->End();
}

void WriteThreadRegisterNotes(const ThreadSnapshot& t, NoteWriter* w) {
  if (t.has_fpregs) w->Note("CORE", NT_PRFPREG, &t.fpregs, sizeof t.fpregs);
  if (t.xstate != nullptr && t.xstate_size > 0) {
    w->Note("LINUX", NT_X86_XSTATE, t.xstate, t.xstate_size);
  }
}

}  // namespace

void WriteNotes(const ProcessSnapshot& s, const CoreWriterOptions& o, NoteWriter* w,
                uint64_t* provider_sizes, bool measuring) {
  for (size_t i = 0; i < s.thread_count(); ++i) {
    const ThreadSnapshot& t = s.thread(i);
    elf_prstatus pr;
    FillPrstatus(s, t, &pr);
    w->Note("CORE", NT_PRSTATUS, &pr, sizeof pr);
    if (i == 0) {
      elf_prpsinfo ps;
      FillPrpsinfo(s, &ps);
      w->Note("CORE", NT_PRPSINFO, &ps, sizeof ps);
      if (const siginfo_t* si = s.siginfo()) w->Note("CORE", NT_SIGINFO, si, sizeof *si);
      std::span<const uint8_t> auxv = s.auxv();
      if (!auxv.empty()) w->Note("CORE", NT_AUXV, auxv.data(), auxv.size());
      WriteFileNote(s, w);
    }
    WriteThreadRegisterNotes(t, w);
  }
  std::span<const uint8_t> layout = s.xsave_layout();
  if (!layout.empty()) w->Note("LINUX", kNtX86XsaveLayout, layout.data(), layout.size());
  if (o.info != nullptr) {
    uint8_t desc[kCppdiagInfoSize];
    EncodeCppdiagInfo(*o.info, desc);
    w->Note(kCppdiagNoteName, kNtCppdiagInfo, desc, sizeof desc);
  }
  for (size_t i = 0; i < o.provider_count && i < kMaxNoteProviders; ++i) {
    if (o.providers[i].fn == nullptr) continue;
    uint64_t before = w->bytes();
    if (!measuring) w->LimitTo(provider_sizes[i]);
    o.providers[i].fn(o.providers[i].context, w);
    if (measuring) {
      w->End();
      provider_sizes[i] = w->bytes() - before;
    } else {
      w->PadToLimit();
    }
  }
  w->End();
}

}  // namespace cppdiag::dump::internal
