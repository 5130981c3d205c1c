// Async-signal-safe: nothing here allocates, locks or uses stdio.
#include "diag/dump/self_snapshot.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "common/async_safe.h"
#include "common/io.h"
#include "common/proc.h"
#include "diag/dump/internal/pagemap.h"
#include "diag/dump/internal/process_vm_read.h"

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

// Streams smaps through the window at the end of maps_text, a line at a
// time: each mapping's first line (its maps line) is kept, compacted at the
// front, and parsed; its VmFlags line sets its flags; the other lines (sizes)
// are dropped. So the buffer needs room for the maps lines only, as when
// /proc/self/maps was read whole.
int SelfSnapshot::LoadMappings(bool* truncated) {
  mapping_count_ = 0;
  const size_t window = std::min(kSmapsWindowBytes, res_.maps_capacity / 4);
  if (window < 256) return ENOBUFS;
  char* const win = res_.maps_text + res_.maps_capacity - window;
  const size_t room = res_.maps_capacity - window;
  size_t kept = 0;
  MappingSnapshot* current = nullptr;  // the mapping the next VmFlags belongs to
  // False once there is no room for another mapping.
  auto take = [&](std::string_view line) {
    if (line.empty()) return true;
    char c = line[0];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {  // "Key: value": not a maps line
      if (current != nullptr) ParseVmFlagsLine(line, current);
      return true;
    }
    current = nullptr;
    if (mapping_count_ == res_.max_mappings || kept + line.size() > room) {
      *truncated = true;
      return false;
    }
    char* text = res_.maps_text + kept;
    std::memcpy(text, line.data(), line.size());
    MapsLine l;
    if (!ParseMapsLine(std::string_view(text, line.size()), &l)) return true;
    kept += line.size();
    MappingSnapshot& m = res_.mappings[mapping_count_++];
    m = MappingSnapshot{};
    static_cast<MapsLine&>(m) = l;
    current = &m;
    return true;
  };

  if (::lseek(res_.smaps_fd, 0, SEEK_SET) != 0) return errno;
  size_t have = 0;
  bool cutting = false;  // dropping the rest of a line longer than the window
  for (;;) {
    ssize_t n = HANDLE_EINTR(::read(res_.smaps_fd, win + have, window - have));
    if (n < 0) return errno;
    if (n == 0) return 0;  // smaps ends with a newline: nothing is left
    have += static_cast<size_t>(n);
    size_t pos = 0;
    while (const void* nl = std::memchr(win + pos, '\n', have - pos)) {
      size_t len = static_cast<size_t>(static_cast<const char*>(nl) - (win + pos));
      if (!cutting && !take(std::string_view(win + pos, len))) return 0;
      cutting = false;
      pos += len + 1;
    }
    if (pos == 0 && have == window) {  // a line as long as the window: keep its start
      if (!cutting && !take(std::string_view(win, have))) return 0;
      cutting = true;
      have = 0;
      continue;
    }
    std::memmove(win, win + pos, have - pos);
    have -= pos;
  }
}

uint32_t SelfSnapshot::ReadCoredumpFilter() const {
  if (res_.coredump_filter_fd < 0) return kDefaultCoredumpFilter;
  char buf[32];
  ssize_t n = HANDLE_EINTR(::pread(res_.coredump_filter_fd, buf, sizeof buf, 0));
  if (n <= 0) return kDefaultCoredumpFilter;
  return ParseCoredumpFilter(std::string_view(buf, static_cast<size_t>(n)));
}

int SelfSnapshot::Load(bool* truncated) {
  *truncated = false;
  if (int err = LoadMappings(truncated)) return err;

  info_ = ProcessInfo{};
  info_.pid = CurrentPid();
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
  info_.coredump_filter = ReadCoredumpFilter();
  return 0;
}

// process_vm_readv on this process: no file to open and no ptrace rights
// needed, so it works where /proc/self/mem is refused (a non-dumpable
// process) or could not be opened (no descriptor left). It pins what it
// reads: in the fork-mode child every page read is copied (self_snapshot.h).
ssize_t SelfSnapshot::ReadWithProcessVm(uint64_t addr, uint8_t* out, size_t len) const {
  return internal::ReadPagesWithProcessVm(CurrentPid(), addr, out, len);
}

// One read from `addr`: a pread of /proc/self/mem when there is a
// descriptor, process_vm_readv otherwise or when the pread fails for another
// reason than EIO (what an unreadable first page gives). Both return a short
// count at the first unreadable page. Through the mem file (FOLL_FORCE) a
// PROT_NONE page reads as the kernel's core would store it; the plan asks
// only for readable mappings.
ssize_t SelfSnapshot::ReadOnce(uint64_t addr, uint8_t* out, size_t len) const {
  if (res_.mem_fd >= 0) {
    ssize_t n = HANDLE_EINTR(::pread(res_.mem_fd, out, len, static_cast<off_t>(addr)));
    if (n >= 0 || errno == EIO) return n;
  }
  return ReadWithProcessVm(addr, out, len);
}

ssize_t SelfSnapshot::ReadMemory(uint64_t addr, void* buf, size_t len) const {
  if (addr > static_cast<uint64_t>(INT64_MAX) || len > static_cast<uint64_t>(INT64_MAX) - addr) {
    return -EINVAL;  // kernel addresses ([vsyscall]) are not readable this way
  }
  auto* out = static_cast<uint8_t*>(buf);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ReadOnce(addr + done, out + done, len - done);
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
  return internal::ReadPageFlags(res_.pagemap_fd, addr, npages, flags);
}

}  // namespace cppdiag::dump
