// The SIGBUS handler (OnSigbus) is async-signal-safe: it reads the guard
// table through atomics, formats with RawLine and ends with _exit.
#include "cli/analyze/mapped_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <utility>

#include "common/io.h"
#include "common/raw_log.h"

namespace cppdiag::cli::analyze {
namespace {

// The live mappings the SIGBUS handler knows. A slot is claimed (busy), its
// path written, then its range published; the handler reads only published
// ranges. More live mappings than slots are simply not watched.
struct GuardSlot {
  std::atomic<bool> busy{false};
  std::atomic<uintptr_t> start{0};
  std::atomic<uintptr_t> end{0};
  char path[256] = {};
};
constexpr int kGuardSlots = 16;
GuardSlot g_slots[kGuardSlots];
std::atomic<bool> g_installed{false};
struct sigaction g_previous;

const char* FileTypeName(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return "a directory";
    case S_IFIFO:
      return "a FIFO";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFSOCK:
      return "a socket";
    case S_IFLNK:
      return "a symbolic link";
  }
  return "not a plain file";
}

int ClaimSlot(const std::string& path, const uint8_t* data, size_t size) {
  for (int i = 0; i < kGuardSlots; ++i) {
    bool expected = false;
    if (!g_slots[i].busy.compare_exchange_strong(expected, true)) continue;
    size_t n = std::min(path.size(), sizeof g_slots[i].path - 1);
    std::memcpy(g_slots[i].path, path.data(), n);
    g_slots[i].path[n] = '\0';
    g_slots[i].end.store(reinterpret_cast<uintptr_t>(data) + size, std::memory_order_relaxed);
    g_slots[i].start.store(reinterpret_cast<uintptr_t>(data), std::memory_order_release);
    return i;
  }
  return -1;
}

void ReleaseSlot(int i) {
  g_slots[i].start.store(0, std::memory_order_release);
  g_slots[i].end.store(0, std::memory_order_relaxed);
  g_slots[i].busy.store(false, std::memory_order_release);
}

void OnSigbus(int sig, siginfo_t* info, void* ucontext) {
  auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (const GuardSlot& slot : g_slots) {
    uintptr_t start = slot.start.load(std::memory_order_acquire);
    uintptr_t end = slot.end.load(std::memory_order_relaxed);
    if (start == 0 || addr < start || addr >= end) continue;
    RawLine line;
    line.Add("cppdiag: ").Add(slot.path).Add(": the file shrank while it was being read (byte ");
    line.Udec(addr - start).Add(" is gone): another process truncated it");
    line.WriteTo(STDERR_FILENO);
    ::_exit(1);
  }
  // Not ours: the previous disposition, then the same fault (or signal) again.
  ::sigaction(SIGBUS, &g_previous, nullptr);
  if (info->si_code <= 0) ::raise(sig);  // sent by kill(): a fault re-raises itself on return
  (void)ucontext;
}

}  // namespace

Result<MappedFile> MappedFile::Open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO with no writer (or some devices) would block.
  Result<ScopedFd> opened = OpenFile(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (!opened) {
    if (opened.error().code() == ELOOP) {
      return Error(ELOOP, {},
                   path + ": a symbolic link (cppdiag does not follow them; pass its target)");
    }
    return opened.error();
  }
  ScopedFd fd = std::move(*opened);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Error::FromErrno("fstat", path);
  if (!S_ISREG(st.st_mode)) {
    return Error::Invalid(path + ": not a regular file (" + FileTypeName(st.st_mode) + ")");
  }
  if (st.st_size == 0) return Error::Invalid(path + ": empty file");
  auto size = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (p == MAP_FAILED) return Error::FromErrno("mmap", path);
  const auto* data = static_cast<const uint8_t*>(p);
  return MappedFile(data, size, ClaimSlot(path, data, size));
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      guard_slot_(std::exchange(other.guard_slot_, -1)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    Reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    guard_slot_ = std::exchange(other.guard_slot_, -1);
  }
  return *this;
}

MappedFile::~MappedFile() { Reset(); }

void MappedFile::Reset() {
  if (guard_slot_ >= 0) ReleaseSlot(guard_slot_);
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
  guard_slot_ = -1;
}

Status InstallTruncationGuard() {
  if (g_installed.exchange(true)) return OkStatus();
  struct sigaction sa {};
  sa.sa_sigaction = &OnSigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(SIGBUS, &sa, &g_previous) != 0) {
    g_installed = false;
    return Error::FromErrno("sigaction", "SIGBUS");
  }
  return OkStatus();
}

}  // namespace cppdiag::cli::analyze
