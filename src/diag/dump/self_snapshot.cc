// Async-signal-safe: nothing here allocates, locks or uses stdio.
#include "diag/dump/self_snapshot.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <string_view>

#include "common/io.h"
#include "common/proc.h"

namespace cppdiag::dump {

void SelfSnapshot::SetStatic(const uint8_t* auxv, size_t auxv_size, const char* comm,
                             const char* psargs) {
  auxv_ = auxv;
  auxv_size_ = auxv_size;
  std::memset(comm_, 0, sizeof comm_);
  std::memset(psargs_, 0, sizeof psargs_);
  if (comm != nullptr) std::memcpy(comm_, comm, strnlen(comm, sizeof comm_ - 1));
  if (psargs != nullptr) std::memcpy(psargs_, psargs, strnlen(psargs, sizeof psargs_ - 1));
}

void SelfSnapshot::AddExclusion(uint64_t start, uint64_t end) {
  if (exclusion_count_ == kMaxExclusions || end <= start) return;
  exclusions_[exclusion_count_][0] = start;
  exclusions_[exclusion_count_][1] = end;
  ++exclusion_count_;
}

int SelfSnapshot::Load(bool* truncated) {
  *truncated = false;
  mapping_count_ = 0;
  if (::lseek(res_.maps_fd, 0, SEEK_SET) != 0) return errno;
  size_t len = 0;
  for (;;) {
    if (len == res_.maps_capacity) {
      *truncated = true;
      break;
    }
    ssize_t n = HANDLE_EINTR(::read(res_.maps_fd, res_.maps_text + len, res_.maps_capacity - len));
    if (n < 0) return errno;
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  std::string_view text(res_.maps_text, len);
  while (!text.empty()) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) break;  // a cut last line
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    MapsLine l;
    if (!ParseMapsLine(line, &l)) continue;
    if (mapping_count_ == res_.max_mappings) {
      *truncated = true;
      break;
    }
    MappingSnapshot& m = res_.mappings[mapping_count_++];
    m = MappingSnapshot{};
    static_cast<MapsLine&>(m) = l;
    for (size_t i = 0; i < exclusion_count_; ++i) {
      if (m.start >= exclusions_[i][0] && m.end <= exclusions_[i][1]) m.dont_dump = true;
    }
  }

  info_ = ProcessInfo{};
  info_.pid = static_cast<pid_t>(::syscall(SYS_getpid));
  info_.ppid = ::getppid();
  info_.pgrp = ::getpgid(0);
  info_.sid = ::getsid(0);
  info_.uid = ::getuid();
  info_.gid = ::getgid();
  errno = 0;
  int nice = ::getpriority(PRIO_PROCESS, 0);
  info_.nice = errno == 0 ? nice : 0;
  std::memcpy(info_.comm, comm_, sizeof info_.comm);
  std::memcpy(info_.psargs, psargs_, sizeof info_.psargs);
  return 0;
}

// process_vm_readv on this process: no file to open and no ptrace rights
// needed, so it works where /proc/self/mem is refused (a non-dumpable
// process). It never splits an iovec, so the remote side goes page by page:
// the count then stops at the first unreadable page.
ssize_t SelfSnapshot::ReadWithProcessVm(uint64_t addr, uint8_t* out, size_t len) const {
  constexpr size_t kMaxIov = 256;
  iovec remote[kMaxIov];
  size_t n = 0, total = 0;
  for (uint64_t a = addr; total < len && n < kMaxIov; ++n) {
    size_t chunk = static_cast<size_t>(((a | 4095) + 1) - a);
    if (chunk > len - total) chunk = len - total;
    remote[n] = iovec{reinterpret_cast<void*>(a), chunk};
    a += chunk;
    total += chunk;
  }
  iovec local{out, total};
  pid_t pid = static_cast<pid_t>(::syscall(SYS_getpid));
  return HANDLE_EINTR(::process_vm_readv(pid, &local, 1, remote, n, 0));
}

ssize_t SelfSnapshot::ReadMemory(uint64_t addr, void* buf, size_t len) const {
  if (addr > static_cast<uint64_t>(INT64_MAX) || len > static_cast<uint64_t>(INT64_MAX) - addr) {
    return -EINVAL;  // kernel addresses ([vsyscall]) are not readable this way
  }
  auto* out = static_cast<uint8_t*>(buf);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ReadWithProcessVm(addr + done, out + done, len - done);
    if (n <= 0) {
      if (done == 0) return n < 0 ? -errno : -EIO;
      break;
    }
    done += static_cast<size_t>(n);
  }
  // Overlay the saved stack bytes.
  uint64_t a = addr > copy_start_ ? addr : copy_start_;
  uint64_t b = addr + done < copy_start_ + copy_size_ ? addr + done : copy_start_ + copy_size_;
  if (copy_data_ != nullptr && a < b)
    std::memcpy(out + (a - addr), copy_data_ + (a - copy_start_), b - a);
  return static_cast<ssize_t>(done);
}

int SelfSnapshot::QueryPages(uint64_t addr, size_t npages, uint8_t* flags) const {
  if (res_.pagemap_fd < 0) return ENOSYS;
  uint64_t entries[512];
  for (size_t done = 0; done < npages;) {
    size_t n = npages - done < 512 ? npages - done : 512;
    off_t off = static_cast<off_t>((addr / 4096 + done) * sizeof(uint64_t));
    ssize_t got = HANDLE_EINTR(::pread(res_.pagemap_fd, entries, n * sizeof(uint64_t), off));
    if (got < static_cast<ssize_t>(n * sizeof(uint64_t))) return got < 0 ? errno : EIO;
    for (size_t i = 0; i < n; ++i) {
      uint64_t e = entries[i];
      flags[done + i] = static_cast<uint8_t>(((e >> 63) & 1 ? kPagePresent : 0) |
                                             ((e >> 62) & 1 ? kPageSwapped : 0) |
                                             ((e >> 61) & 1 ? kPageFileOrSharedAnon : 0));
    }
    done += n;
  }
  return 0;
}

}  // namespace cppdiag::dump
