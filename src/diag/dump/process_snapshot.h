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
// buffer), with the VmFlags of /proc/<pid>/smaps that decide whether the
// kernel would put its data in a core (false where not known).
struct MappingSnapshot : MapsLine {
  bool dont_dump = false;  // dd: VM_DONTDUMP (MADV_DONTDUMP, or set by the kernel: [vvar])
  bool io = false;         // io: VM_IO, device memory (reading it may have side effects)
  bool pfn_map = false;    // pf: VM_PFNMAP, pages with no struct page behind them
  bool hugetlb = false;    // ht: hugetlbfs pages (coredump_filter bits 5 and 6)

  // No dump of any type stores its data: the kernel never dumps dd and io
  // mappings, and cannot read pf ones.
  bool never_dumped() const { return dont_dump || io || pfn_map; }

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

// Bits of /proc/<pid>/coredump_filter (the kernel's MMF_DUMP_* order).
enum CoredumpFilterBits : uint32_t {
  kFilterAnonPrivate = 1 << 0,
  kFilterAnonShared = 1 << 1,
  kFilterFilePrivate = 1 << 2,
  kFilterFileShared = 1 << 3,
  kFilterElfHeaders = 1 << 4,
  kFilterHugetlbPrivate = 1 << 5,
  kFilterHugetlbShared = 1 << 6,
  kFilterDaxPrivate = 1 << 7,  // DAX mappings are not told apart (smaps does not show them)
  kFilterDaxShared = 1 << 8,
};
// The kernel's default (CONFIG_CORE_DUMP_DEFAULT_ELF_HEADERS).
inline constexpr uint32_t kDefaultCoredumpFilter = 0x33;

struct ProcessInfo {
  pid_t pid = 0, ppid = 0, pgrp = 0, sid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  int nice = 0;
  // /proc/<pid>/coredump_filter when the snapshot was taken: what a heap
  // dump stores (memory_plan.h), as the kernel's core would.
  uint32_t coredump_filter = kDefaultCoredumpFilter;
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

// Sets `m`'s dd, io, pf and ht flags from a "VmFlags: rd wr mr ..." line of
// /proc/<pid>/smaps. Returns false (and changes nothing) for any other line.
// Async-signal-safe.
bool ParseVmFlagsLine(std::string_view line, MappingSnapshot* m);

// The value of /proc/<pid>/coredump_filter ("00000033\n"), or
// kDefaultCoredumpFilter when `text` is not a hex number. Async-signal-safe.
uint32_t ParseCoredumpFilter(std::string_view text);

}  // namespace cppdiag::dump
