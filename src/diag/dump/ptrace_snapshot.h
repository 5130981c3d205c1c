// Another process, stopped with ptrace, as a ProcessSnapshot: the writer
// (elf_core_writer.h) makes the same core of it as of this process.
//
//   - Threads: every thread of a PtraceAttachment, with PTRACE_GETREGSET's
//     NT_PRSTATUS (general registers, fs_base), NT_PRFPREG and NT_X86_XSTATE,
//     the pending and blocked signals and CPU times of /proc/<pid>/task/<tid>.
//   - Identity: /proc/<pid>/{stat,status,cmdline,auxv,coredump_filter}.
//   - Memory: the mappings of /proc/<mem>/smaps (with VmFlags, so
//     MADV_DONTDUMP and device memory are left out as the kernel leaves
//     them), read with process_vm_readv, or through /proc/<mem>/mem where
//     that is refused; page residency from /proc/<mem>/pagemap. <mem> is the
//     target itself, or the frozen copy-on-write child of an injected fork
//     (ptrace_fork.h), whose memory is the target's at the fork.
//
//   PtraceSnapshot s;
//   if (auto st = s.CaptureThreads(attached); !st) return st.error();
//   if (auto st = s.LoadProcess(pid); !st) return st.error();
//   if (auto st = s.LoadMemory(pid); !st) return st.error();
//   WriteElfCore(s, options, buffers, &sink, &stats);
//
// Not async-signal-safe (allocates); the cppdiag tool uses it, not the runtime.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "common/scoped_fd.h"
#include "common/status.h"
#include "diag/dump/process_snapshot.h"
#include "diag/dump/ptrace_attach.h"

namespace cppdiag::dump {

class PtraceSnapshot final : public ProcessSnapshot {
 public:
  // How memory is read: process_vm_readv, falling back to /proc/<pid>/mem
  // when it is refused (kAuto); /proc/<pid>/mem, falling back to
  // process_vm_readv when it cannot be opened (kProcMemFirst: for the fork
  // child, see ptrace_dump.cc); or only one of them (tests).
  enum class MemoryAccess { kAuto, kProcMemFirst, kProcessVm, kProcMem };

  PtraceSnapshot() = default;
  PtraceSnapshot(const PtraceSnapshot&) = delete;
  PtraceSnapshot& operator=(const PtraceSnapshot&) = delete;

  // Reads the registers of every stopped thread (the first one first).
  Status CaptureThreads(const PtraceAttachment& attached);
  // Process identity, auxv and coredump_filter of `pid`.
  Status LoadProcess(pid_t pid);
  // The mappings of `memory_pid`, whose memory ReadMemory then reads.
  Status LoadMemory(pid_t memory_pid);

  void SetSiginfo(const siginfo_t* si) { siginfo_ = si; }
  void set_memory_access(MemoryAccess access) { access_ = access; }
  // Threads listed but whose registers could not be read (they died).
  size_t threads_not_captured() const { return not_captured_; }
  // Whether memory was read through /proc/<pid>/mem.
  bool used_proc_mem() const { return mem_fd_.is_valid(); }
  MemoryAccess memory_access() const { return access_; }

  const ProcessInfo& process() const override { return info_; }
  size_t thread_count() const override { return threads_.size(); }
  const ThreadSnapshot& thread(size_t i) const override { return threads_[i]; }
  size_t mapping_count() const override { return mappings_.size(); }
  const MappingSnapshot& mapping(size_t i) const override { return mappings_[i]; }
  std::span<const uint8_t> auxv() const override {
    return {reinterpret_cast<const uint8_t*>(auxv_.data()), auxv_.size()};
  }
  std::span<const uint8_t> xsave_layout() const override { return layout_; }
  const siginfo_t* siginfo() const override { return siginfo_; }
  ssize_t ReadMemory(uint64_t addr, void* buf, size_t len) const override;
  int QueryPages(uint64_t addr, size_t npages, uint8_t* flags) const override;

 private:
  ssize_t ReadWithProcessVm(uint64_t addr, uint8_t* out, size_t len) const;
  ssize_t ReadWithProcMem(uint64_t addr, uint8_t* out, size_t len) const;

  ProcessInfo info_;
  std::vector<ThreadSnapshot> threads_;
  std::vector<std::unique_ptr<uint8_t[]>> xstates_;
  size_t not_captured_ = 0;
  std::string smaps_;  // the mappings' paths view it
  std::vector<MappingSnapshot> mappings_;
  std::string auxv_;
  std::vector<uint8_t> layout_;
  const siginfo_t* siginfo_ = nullptr;
  pid_t memory_pid_ = 0;
  mutable MemoryAccess access_ = MemoryAccess::kAuto;
  mutable bool process_vm_refused_ = false;
  mutable ScopedFd mem_fd_;
  ScopedFd pagemap_fd_;
};

}  // namespace cppdiag::dump
