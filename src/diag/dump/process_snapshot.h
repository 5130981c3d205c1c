// A read-only model of a process at one moment, as the ELF core writer needs
// it (after crashpad's snapshot/ layer): threads and their registers, memory
// mappings, auxv, process identity, and a way to read memory.
//
// Implementations: SelfSnapshot (the live process itself, built on the
// async-signal-safe self-dump path), FakeProcessSnapshot (unit tests), and
// later a ptrace snapshot of another process. The writer sees only this
// interface, so it can be tested in memory.
//
// Async-signal-safe: the interface is plain data and virtual calls; every
// accessor must be callable from a signal handler in implementations used on
// the self-dump path (no allocation, no locks).
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/user.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/proc.h"

namespace cppdiag::dump {

// How a thread's registers were obtained.
enum class RegisterSource : uint8_t {
  kNone,           // nothing known: registers are zero
  kSignalFrame,    // the thread's own signal frame (capture signal or crash)
  kKernelSyscall,  // only sp, pc and syscall arguments, from /proc/<pid>/task/<tid>/syscall
  kPtrace,         // PTRACE_GETREGS (a ptrace snapshot)
};

struct ThreadSnapshot {
  pid_t tid = 0;
  RegisterSource source = RegisterSource::kNone;
  user_regs_struct regs{};      // the order of NT_PRSTATUS's pr_reg
  bool has_fpregs = false;      // fpregs valid
  user_fpregs_struct fpregs{};  // FXSAVE layout (NT_PRFPREG)
  // The XSAVE area in the NT_X86_XSTATE layout (standard format, XCR0 in
  // bytes 464..471), or null.
  const uint8_t* xstate = nullptr;
  size_t xstate_size = 0;
  int cursig = 0;        // the signal this thread is handling (the crashing thread)
  uint64_t sigpend = 0;  // pending signals, bit n-1 for signal n
  uint64_t sighold = 0;  // blocked signals
  int64_t utime_us = 0;  // CPU time, when known
  int64_t stime_us = 0;
};

// A mapping as /proc/<pid>/maps shows it (path viewing the snapshot's
// buffer), and whether its data may be stored.
struct MappingSnapshot : MapsLine {
  bool dont_dump = false;  // never store data (the dumper's own buffers, MADV_DONTDUMP)

  // Backed by a file (what the kernel lists in NT_FILE).
  bool file_backed() const { return inode != 0 || (!path.empty() && path.front() == '/'); }
  // Anonymous memory: no file; includes [heap], [stack], [anon:name].
  bool anonymous() const { return !file_backed() && !special(); }
  // Kernel-provided mappings: [vdso], [vvar], [vsyscall] and the like.
  bool special() const {
    return path == "[vdso]" || path == "[vvar]" || path == "[vvar_vclock]" ||
           path == "[vsyscall]" || path == "[uprobes]";
  }
};

struct ProcessInfo {
  pid_t pid = 0, ppid = 0, pgrp = 0, sid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  int nice = 0;
  char comm[16] = {};    // NUL-terminated (pr_fname)
  char psargs[80] = {};  // the start of the command line, spaces between args (pr_psargs)
};

// Bits of QueryPages().
enum PageFlags : uint8_t {
  kPagePresent = 1,           // in RAM
  kPageSwapped = 2,           // in swap
  kPageFileOrSharedAnon = 4,  // a page-cache or shmem page (not a private anonymous copy)
};

class ProcessSnapshot {
 public:
  virtual ~ProcessSnapshot() = default;

  virtual const ProcessInfo& process() const = 0;

  // Threads; thread(0) is the crashing (or dumping) thread and comes first in
  // the core, as the kernel writes it.
  virtual size_t thread_count() const = 0;
  virtual const ThreadSnapshot& thread(size_t i) const = 0;

  // Mappings in ascending, non-overlapping address order.
  virtual size_t mapping_count() const = 0;
  virtual const MappingSnapshot& mapping(size_t i) const = 0;

  // The raw auxiliary vector (pairs of uint64, AT_NULL-terminated).
  virtual std::span<const uint8_t> auxv() const = 0;

  // The signal that caused the dump, or null for a dump on request.
  virtual const siginfo_t* siginfo() const = 0;

  // Reads [addr, addr + len). Returns the number of bytes read from `addr` on
  // (a short count stops at the first unreadable page), or -errno when not
  // even the first byte can be read. Never crashes on unmapped memory.
  virtual ssize_t ReadMemory(uint64_t addr, void* buf, size_t len) const = 0;

  // The NT_X86_XSAVE_LAYOUT descriptor (where each XSAVE component lies in
  // NT_X86_XSTATE; AMD and Intel differ), or empty.
  virtual std::span<const uint8_t> xsave_layout() const { return {}; }

  // Fills `flags[i]` (PageFlags bits) for the `npages` pages from the
  // page-aligned `addr`. Returns 0, or an errno (ENOSYS: not known, so the
  // writer reads every page).
  virtual int QueryPages(uint64_t addr, size_t npages, uint8_t* flags) const {
    (void)addr;
    (void)npages;
    (void)flags;
    return ENOSYS;
  }
};

// Index of the mapping containing `addr`, or SIZE_MAX. Async-signal-safe.
size_t FindMapping(const ProcessSnapshot& snapshot, uint64_t addr);

}  // namespace cppdiag::dump
