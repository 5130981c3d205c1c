#include "diag/dump/ptrace_snapshot.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "common/io.h"
#include "common/proc.h"
#include "diag/dump/internal/pagemap.h"
#include "diag/dump/internal/process_vm_read.h"
#include "diag/dump/x86_64_registers.h"

namespace cppdiag::dump {
namespace {

std::string ProcPath(pid_t pid, const std::string& leaf) {
  return "/proc/" + std::to_string(pid) + "/" + leaf;
}

// The value of "Key:\t..." in a status file, or "".
std::string_view Field(std::string_view text, std::string_view key) {
  size_t at = 0;
  while (at < text.size()) {
    size_t eol = text.find('\n', at);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(at, eol - at);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
      line.remove_prefix(key.size() + 1);
      while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
      return line;
    }
    at = eol + 1;
  }
  return {};
}

uint64_t Hex(std::string_view s) { return std::strtoull(std::string(s).c_str(), nullptr, 16); }

// The fields of /proc/<pid>/stat after "(comm) ", split on spaces: [0] is
// the state, [1] ppid, [2] pgrp, [3] session, [11] utime, [12] stime, [16] nice.
std::vector<std::string> StatFields(const std::string& text) {
  std::vector<std::string> out;
  size_t close = text.rfind(')');
  if (close == std::string::npos) return out;
  size_t at = close + 2;
  while (at < text.size()) {
    size_t sp = text.find_first_of(" \n", at);
    if (sp == std::string::npos) sp = text.size();
    out.push_back(text.substr(at, sp - at));
    at = sp + 1;
  }
  return out;
}

int64_t TicksToUs(const std::string& ticks) {
  static const long hz = ::sysconf(_SC_CLK_TCK);
  return static_cast<int64_t>(std::strtoull(ticks.c_str(), nullptr, 10)) * 1'000'000 /
         (hz > 0 ? hz : 100);
}

bool GetRegset(pid_t tid, int type, void* buf, size_t* size) {
  iovec iov{buf, *size};
  if (::ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(static_cast<uintptr_t>(type)),
               &iov) != 0) {
    return false;
  }
  *size = iov.iov_len;
  return true;
}

}  // namespace

Status PtraceSnapshot::CaptureThreads(const PtraceAttachment& attached) {
  threads_.clear();
  xstates_.clear();
  not_captured_ = 0;
  const size_t xcap = XstateCapacity();
  for (const StoppedThread& st : attached.threads()) {
    ThreadSnapshot t;
    t.tid = st.tid;
    size_t size = sizeof t.regs;
    if (!GetRegset(st.tid, NT_PRSTATUS, &t.regs, &size) || size != sizeof t.regs) {
      ++not_captured_;  // killed (SIGKILL) while stopped
      continue;
    }
    t.source = RegisterSource::kPtrace;
    size = sizeof t.fpregs;
    t.has_fpregs = GetRegset(st.tid, NT_PRFPREG, &t.fpregs, &size) && size == sizeof t.fpregs;
    auto xstate = std::make_unique<uint8_t[]>(xcap);
    size = xcap;
    if (GetRegset(st.tid, NT_X86_XSTATE, xstate.get(), &size) && size > 512) {
      t.xstate = xstate.get();
      t.xstate_size = size;
      xstates_.push_back(std::move(xstate));
    }
    const std::string task = "task/" + std::to_string(st.tid) + "/";
    if (auto status = ReadFileToString(ProcPath(attached.pid(), task + "status"))) {
      t.sigpend = Hex(Field(*status, "SigPnd")) | Hex(Field(*status, "ShdPnd"));
      t.sighold = Hex(Field(*status, "SigBlk"));
    }
    if (st.pending_signal > 0 && st.pending_signal <= 64)
      t.sigpend |= uint64_t{1} << (st.pending_signal - 1);
    if (auto stat = ReadFileToString(ProcPath(attached.pid(), task + "stat"))) {
      auto f = StatFields(*stat);
      if (f.size() > 12) {
        t.utime_us = TicksToUs(f[11]);
        t.stime_us = TicksToUs(f[12]);
      }
    }
    threads_.push_back(t);
  }
  if (threads_.empty()) return Error(ESRCH, "ptrace(PTRACE_GETREGSET)", "every thread");
  layout_.assign(4096, 0);
  layout_.resize(BuildXsaveLayout(layout_.data(), layout_.size()));
  return {};
}

Status PtraceSnapshot::LoadProcess(pid_t pid) {
  info_ = ProcessInfo{};
  info_.pid = pid;
  CPPDIAG_ASSIGN_OR_RETURN(std::string stat, ReadFileToString(ProcPath(pid, "stat")));
  auto f = StatFields(stat);
  if (f.size() < 17) return Error::Invalid("unexpected " + ProcPath(pid, "stat"));
  info_.ppid = static_cast<pid_t>(std::stol(f[1]));
  info_.pgrp = static_cast<pid_t>(std::stol(f[2]));
  info_.sid = static_cast<pid_t>(std::stol(f[3]));
  info_.nice = static_cast<int>(std::stol(f[16]));
  size_t open = stat.find('('), close = stat.rfind(')');
  if (open != std::string::npos && close > open) {
    std::string comm = stat.substr(open + 1, close - open - 1);
    std::memcpy(info_.comm, comm.data(), std::min(comm.size(), sizeof info_.comm - 1));
  }
  if (auto status = ReadFileToString(ProcPath(pid, "status"))) {
    info_.uid =
        static_cast<uid_t>(std::strtoul(std::string(Field(*status, "Uid")).c_str(), nullptr, 10));
    info_.gid =
        static_cast<gid_t>(std::strtoul(std::string(Field(*status, "Gid")).c_str(), nullptr, 10));
  }
  if (auto cmdline = ReadFileToString(ProcPath(pid, "cmdline"), 4096)) {
    std::string args = cmdline->substr(0, sizeof info_.psargs - 1);
    while (!args.empty() && args.back() == '\0') args.pop_back();
    std::replace(args.begin(), args.end(), '\0', ' ');
    std::memcpy(info_.psargs, args.data(), args.size());
  }
  CPPDIAG_ASSIGN_OR_RETURN(auxv_, ReadFileToString(ProcPath(pid, "auxv")));
  auto filter = ReadFileToString(ProcPath(pid, "coredump_filter"));
  info_.coredump_filter = filter ? ParseCoredumpFilter(*filter) : kDefaultCoredumpFilter;
  return {};
}

Status PtraceSnapshot::LoadMemory(pid_t memory_pid) {
  memory_pid_ = memory_pid;
  mem_fd_.reset();
  process_vm_refused_ = false;
  mappings_.clear();
  CPPDIAG_ASSIGN_OR_RETURN(smaps_, ReadFileToString(ProcPath(memory_pid, "smaps"), 1u << 30));
  size_t current = SIZE_MAX;  // the mapping the next VmFlags line belongs to
  std::string_view text(smaps_);
  for (size_t at = 0; at < text.size();) {
    size_t eol = text.find('\n', at);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(at, eol - at);
    at = eol + 1;
    MapsLine l;
    char c = line.empty() ? ' ' : line[0];
    bool maps_line = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    if (maps_line && ParseMapsLine(line, &l)) {
      MappingSnapshot m;
      static_cast<MapsLine&>(m) = l;
      current = mappings_.size();
      mappings_.push_back(m);
    } else if (current != SIZE_MAX) {
      ParseVmFlagsLine(line, &mappings_[current]);
    }
  }
  if (mappings_.empty()) return Error::Invalid("no mappings in " + ProcPath(memory_pid, "smaps"));
  auto pagemap = OpenFile(ProcPath(memory_pid, "pagemap"), O_RDONLY);
  if (pagemap) pagemap_fd_ = std::move(*pagemap);
  return {};
}

// One iovec per page: the count stops at the first unreadable page.
ssize_t PtraceSnapshot::ReadWithProcessVm(uint64_t addr, uint8_t* out, size_t len) const {
  return internal::ReadPagesWithProcessVm(memory_pid_, addr, out, len);
}

ssize_t PtraceSnapshot::ReadWithProcMem(uint64_t addr, uint8_t* out, size_t len) const {
  if (!mem_fd_.is_valid()) {
    auto fd = OpenFile(ProcPath(memory_pid_, "mem"), O_RDONLY);
    if (!fd) {
      errno = fd.error().code();
      return -1;
    }
    mem_fd_ = std::move(*fd);
  }
  return HANDLE_EINTR(::pread(mem_fd_.get(), out, len, static_cast<off_t>(addr)));
}

ssize_t PtraceSnapshot::ReadMemory(uint64_t addr, void* buf, size_t len) const {
  if (addr > static_cast<uint64_t>(INT64_MAX) || len > static_cast<uint64_t>(INT64_MAX) - addr) {
    return -EINVAL;  // [vsyscall] and other kernel addresses
  }
  auto* out = static_cast<uint8_t*>(buf);
  size_t done = 0;
  while (done < len) {
    if (access_ == MemoryAccess::kProcMemFirst && !mem_fd_.is_valid() && !process_vm_refused_) {
      auto fd = OpenFile(ProcPath(memory_pid_, "mem"), O_RDONLY);
      if (fd) {
        mem_fd_ = std::move(*fd);
      } else {
        access_ = MemoryAccess::kAuto;  // no mem file: process_vm_readv it is
      }
    }
    bool vm = access_ == MemoryAccess::kProcessVm ||
              (access_ == MemoryAccess::kAuto && !process_vm_refused_);
    ssize_t n = vm ? ReadWithProcessVm(addr + done, out + done, len - done)
                   : ReadWithProcMem(addr + done, out + done, len - done);
    if (n < 0 && vm && access_ == MemoryAccess::kAuto && (errno == EPERM || errno == ENOSYS)) {
      process_vm_refused_ = true;  // a seccomp profile, or an LSM: try the mem file
      continue;
    }
    if (n <= 0) {
      if (done == 0) return n < 0 ? -errno : -EIO;
      break;
    }
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

int PtraceSnapshot::QueryPages(uint64_t addr, size_t npages, uint8_t* flags) const {
  if (!pagemap_fd_.is_valid()) return ENOSYS;
  return internal::ReadPageFlags(pagemap_fd_.get(), addr, npages, flags);
}

}  // namespace cppdiag::dump
