// Async-signal-safe: the self-dump state's descriptors, shared page and
// forked-child reset (no allocation, no locks, no stdio, no exceptions).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <new>

#include "common/io.h"
#include "diag/dump/internal/self_dump_state.h"

namespace cppdiag::dump {
namespace internal {

namespace {
constexpr size_t kReportPageBytes = 4096;
}  // namespace

std::atomic<State*> g_state{nullptr};

int OpenProc(const char* path, int flags) { return HANDLE_EINTR(::open(path, flags | O_CLOEXEC)); }

void CloseOwned(std::atomic<int>* fd) {
  int f = fd->exchange(-1, std::memory_order_acq_rel);
  if (f >= 0) ::close(f);
}

void ConfigureSnapshot(State* s) {
  SelfSnapshot::Resources r;
  r.mem_fd = s->mem_fd.load(std::memory_order_relaxed);
  r.pagemap_fd = s->pagemap_fd.load(std::memory_order_relaxed);
  r.smaps_fd = s->maps_fd.load(std::memory_order_relaxed);
  r.coredump_filter_fd = s->coredump_filter_fd.load(std::memory_order_relaxed);
  r.maps_text = s->maps_text;
  r.maps_capacity = s->maps_capacity;
  r.mappings = s->mappings;
  r.max_mappings = s->max_mappings;
  s->snapshot.Configure(r);
}

int OpenProcFiles(State* s) {
  CloseOwned(&s->maps_fd);
  CloseOwned(&s->task_fd);
  CloseOwned(&s->coredump_filter_fd);
  int maps = OpenProc("/proc/self/smaps", O_RDONLY);  // maps lines and VmFlags
  if (maps < 0) return errno;
  s->maps_fd.store(maps, std::memory_order_release);
  int task = OpenProc("/proc/self/task", O_RDONLY | O_DIRECTORY);
  if (task < 0) return errno;
  s->task_fd.store(task, std::memory_order_release);
  s->coredump_filter_fd.store(OpenProc("/proc/self/coredump_filter", O_RDONLY),
                              std::memory_order_release);
  ConfigureSnapshot(s);
  s->pid = CurrentPid();
  return 0;
}

// Follows a symbolic link once: what CPPDIAG_DUMP_DIR resolves to now is
// where socket requests write.
int OpenDumpDir(State* s) {
  if (s->dump_dir[0] == '\0') return ENOENT;
  s->reserve.GiveOne();
  int fd = OpenProc(s->dump_dir, O_PATH | O_DIRECTORY);
  int err = fd < 0 ? errno : 0;
  s->reserve.Fill();
  if (fd < 0) return err;
  char proc[32] = "/proc/self/fd/";
  size_t n = std::strlen(proc);
  FormatDecimal(static_cast<uint64_t>(fd), proc + n, sizeof proc - n);
  ssize_t len = ::readlink(proc, s->dump_dir_path, sizeof s->dump_dir_path - 1);
  if (len > 0 && s->dump_dir_path[0] == '/') {
    s->dump_dir_path[len] = '\0';
  } else {  // no /proc: the path as configured
    std::memcpy(s->dump_dir_path, s->dump_dir, std::strlen(s->dump_dir) + 1);
  }
  s->dump_dir_fd.store(fd, std::memory_order_release);
  return 0;
}

// Shared with the fork-mode child, so not a ScopedMmap (private); left out
// of dumps all the same.
ForkReport* MapReportPage(void* at) {
  static_assert(sizeof(ForkReport) <= kReportPageBytes);
  void* page = ::mmap(at, kReportPageBytes, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS | (at != nullptr ? MAP_FIXED : 0), -1, 0);
  if (page == MAP_FAILED) return nullptr;
  ::madvise(page, kReportPageBytes, MADV_DONTDUMP);
  return new (page) ForkReport();
}

uint64_t ReadCgroupUsage(const State* s) {
  uint64_t v = 0;
  if (s->cgroup_version == 0 || !ReadDecimalFile(s->cgroup_usage_path, &v)) return kCppdiagUnknown;
  return v;
}

}  // namespace internal

void ForgetSelfDumpStateInForkedChild() noexcept {
  internal::State* s = internal::g_state.load(std::memory_order_acquire);
  if (s == nullptr) return;
  for (std::atomic<int>* fd : {&s->maps_fd, &s->task_fd, &s->coredump_filter_fd, &s->dump_dir_fd,
                               &s->mem_fd, &s->pagemap_fd}) {
    internal::CloseOwned(fd);
  }
  s->reserve.CloseAll();
  s->file.CloseDescriptors();  // a dump in flight: its file stays the parent's
  internal::ConfigureSnapshot(s);
  s->pid = 0;  // the next dump opens this process's own /proc files and reserve
  // The report page is shared with the parent, whose fork-mode writer may be
  // using it: a page of our own at the same address (still left out of dumps).
  if (s->report != &s->private_report && internal::MapReportPage(s->report) == nullptr) {
    s->report = &s->private_report;
    s->fork_mode_available = false;
  }
  // A dump in flight in another thread when the process forked: its thread
  // is not here, and neither is its dump.
  s->lock.ForgetOwner();
}

}  // namespace cppdiag::dump
