// Async-signal-safe: WriteSelfDump, ExpandSelfDumpName, SelfDumpDefaultType
// and everything they call (no allocation, no locks, no stdio, no
// exceptions). PrepareSelfDump runs in normal context and allocates.
#include "diag/dump/self_dump.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdio>  // renameat2
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "common/cgroup.h"
#include "common/io.h"
#include "common/raw_log.h"
#include "diag/dump/dump_file.h"
#include "diag/dump/dump_name.h"
#include "diag/dump/elf_core_writer.h"
#include "diag/dump/fork_snapshot.h"
#include "diag/dump/note_provider.h"
#include "diag/dump/self_snapshot.h"
#include "diag/dump/thread_capture.h"

namespace cppdiag::dump {
namespace {

constexpr size_t kSinkBufferBytes = 64 << 10;
constexpr size_t kAuxvBytes = 4096;
constexpr size_t kBytesPerMapsLine = 128;
constexpr size_t kReportPageBytes = 4096;

struct State {
  // Configuration, in fixed buffers for the signal path.
  std::atomic<int> default_type{static_cast<int>(DumpType::kHeap)};
  char name_template[PATH_MAX] = {};
  char exe[256] = {};
  int cgroup_version = 0;
  char cgroup_usage_path[PATH_MAX] = {};
  char cgroup_limit_path[PATH_MAX] = {};  // read at dump time (kAuto)
  uint64_t cgroup_limit = kCppdiagUnknown;
  uint32_t timeout_ms = 1000;
  uint64_t writeback_bytes = 8 << 20;
  uint32_t writer_stall_timeout_ms = 120000;
  pid_t pid = 0;  // of the process that prepared (a fork child reopens /proc files)

  // Every descriptor the dump state owns, atomic so that
  // ForgetSelfDumpStateInForkedChild sees what another thread had open when
  // the process forked. No handle on this process's memory is kept between
  // dumps: memory is read with process_vm_readv, and pagemap (whose PFNs
  // depend on the opener's capabilities) is open only while a dump is written.
  std::atomic<int> maps_fd{-1}, task_fd{-1};  // from PrepareSelfDump on (maps_fd: smaps)
  std::atomic<int> coredump_filter_fd{-1};    // optional
  std::atomic<int> dump_dir_fd{-1};           // CPPDIAG_DUMP_DIR (O_PATH), once opened
  std::atomic<int> pagemap_fd{-1};            // while a dump is written
  DescriptorReserve reserve;                  // for a process out of descriptors
  DumpFile file;                              // the dump being written

  char dump_dir[PATH_MAX] = {};       // CPPDIAG_DUMP_DIR as configured
  char dump_dir_path[PATH_MAX] = {};  // what it resolved to when opened

  std::optional<CoreWriterBuffersOwner> writer;
  void* region = nullptr;  // maps text, mappings, sink buffer
  size_t region_size = 0;
  char* maps_text = nullptr;
  size_t maps_capacity = 0;
  MappingSnapshot* mappings = nullptr;
  size_t max_mappings = 0;
  uint8_t* sink_buffer = nullptr;

  uint8_t auxv[kAuxvBytes] = {};
  size_t auxv_size = 0;
  char comm[16] = {};
  char psargs[80] = {};
  uint8_t xsave_layout[64 * 16] = {};
  size_t xsave_layout_size = 0;

  SelfSnapshot snapshot;
  NoteProvider providers[kMaxNoteProviders];
  ForkReport* report = nullptr;  // MAP_SHARED: the fork-mode child's progress and result
  // A forked child that could not get a report page of its own (it must not
  // write the parent's): this one, and no fork mode.
  ForkReport private_report;
  bool fork_mode_available = true;

  std::atomic<pid_t> owner{0};        // the thread writing a dump
  std::atomic<uint32_t> unlocked{0};  // futex word, bumped when a dump ends
};

std::atomic<State*> g_state{nullptr};
// Dumps given their final name (crash, watchdog, on request): the counters'
// cppdiag_dumps_written_total. Lock-free, so the crash path may bump it.
std::atomic<uint64_t> g_dumps_written{0};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

pid_t Tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }
pid_t Pid() { return static_cast<pid_t>(::syscall(SYS_getpid)); }

// Appends a NUL-terminated string at out[*n]; false if it does not fit.
bool AppendPath(char* out, size_t size, size_t* n, const char* in) {
  size_t len = std::strlen(in);
  if (*n + len + 1 > size) return false;
  std::memcpy(out + *n, in, len + 1);
  *n += len;
  return true;
}

// Copies a NUL-terminated string; false if it does not fit.
bool CopyString(char* out, size_t size, const char* in) {
  size_t n = strnlen(in, size);
  if (n == size) return false;
  std::memcpy(out, in, n + 1);
  return true;
}

int OpenProc(const char* path, int flags) { return HANDLE_EINTR(::open(path, flags | O_CLOEXEC)); }

// Closes a descriptor the state owns. The slot is cleared first: a fork in
// between leaks it to the child rather than leaving a number the child would
// close after it was reused.
void CloseOwned(std::atomic<int>* fd) {
  int f = fd->exchange(-1, std::memory_order_acq_rel);
  if (f >= 0) ::close(f);
}

// Points the snapshot at the descriptors open now.
void ConfigureSnapshot(State* s) {
  SelfSnapshot::Resources r;
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
  s->pid = Pid();
  return 0;
}

// The auxiliary vector from getauxval, for when /proc/self/auxv is refused
// (a non-dumpable process): debuggers need AT_PHDR and AT_ENTRY to place a
// PIE executable, AT_SYSINFO_EHDR for the vDSO.
size_t AuxvFromGetauxval(uint8_t* out, size_t capacity) {
  size_t n = 0;
  for (uint64_t type = 1; type < 64 && n + 32 <= capacity; ++type) {
    if (type == AT_IGNORE) continue;
    errno = 0;
    uint64_t value = ::getauxval(type);
    if (value == 0 && errno == ENOENT) continue;
    uint64_t kv[2] = {type, value};
    std::memcpy(out + n, kv, sizeof kv);
    n += sizeof kv;
  }
  std::memset(out + n, 0, 16);  // AT_NULL
  return n + 16;
}

void LoadStatic(State* s) {
  if (auto auxv = ReadFileToString("/proc/self/auxv", kAuxvBytes); auxv && !auxv->empty()) {
    s->auxv_size = std::min(auxv->size(), kAuxvBytes);
    std::memcpy(s->auxv, auxv->data(), s->auxv_size);
  } else {
    s->auxv_size = AuxvFromGetauxval(s->auxv, kAuxvBytes);
  }
  if (auto comm = ReadFileToString("/proc/self/comm", 64)) {
    std::string c = *comm;
    while (!c.empty() && c.back() == '\n') c.pop_back();
    std::strncpy(s->comm, c.c_str(), sizeof s->comm - 1);
  }
  if (auto cmdline = ReadFileToString("/proc/self/cmdline", 4096)) {
    std::string args = *cmdline;
    while (!args.empty() && args.back() == '\0') args.pop_back();
    for (char& c : args) c = c == '\0' ? ' ' : c;
    std::strncpy(s->psargs, args.c_str(), sizeof s->psargs - 1);
  }
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::string name = s->comm;
  if (n > 0) {
    std::string path(exe, static_cast<size_t>(n));
    if (path.ends_with(" (deleted)")) path.resize(path.size() - 10);
    name = path.substr(path.rfind('/') + 1);
  }
  std::strncpy(s->exe, name.c_str(), sizeof s->exe - 1);
}

// Opens CPPDIAG_DUMP_DIR (following a symbolic link, once: what it resolves
// to now is where socket requests write) and notes the path it resolved to.
// Returns 0 or an errno value.
int OpenDumpDir(State* s) {
  if (s->dump_dir[0] == '\0') return ENOENT;
  s->reserve.GiveOne();
  int fd = OpenProc(s->dump_dir, O_PATH | O_DIRECTORY);
  int err = fd < 0 ? errno : 0;
  s->reserve.Fill();
  if (fd < 0) return err;
  char proc[32] = "/proc/self/fd/";
  size_t n = std::strlen(proc);
  n += FormatDecimal(static_cast<uint64_t>(fd), proc + n, sizeof proc - n - 1);
  proc[n] = '\0';
  ssize_t len = ::readlink(proc, s->dump_dir_path, sizeof s->dump_dir_path - 1);
  if (len > 0 && s->dump_dir_path[0] == '/') {
    s->dump_dir_path[len] = '\0';
  } else {  // no /proc: the path as configured
    std::memcpy(s->dump_dir_path, s->dump_dir, std::strlen(s->dump_dir) + 1);
  }
  s->dump_dir_fd.store(fd, std::memory_order_release);
  return 0;
}

Status Configure(State* s, const SelfDumpConfig& c) {
  std::string tmpl = c.name_template;
  if (tmpl.empty()) {
    const char* tmpdir = std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe): at start
    tmpl = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") + "/core.%e.%p.%t";
  }
  if (tmpl.size() >= sizeof s->name_template) {
    return Error(ENAMETOOLONG, "", "dump name template is too long");
  }
  if (c.dump_dir.size() >= sizeof s->dump_dir) {
    return Error(ENAMETOOLONG, "", "dump directory (CPPDIAG_DUMP_DIR) is too long");
  }
  std::string usage_path;
  int version = c.cgroup_version;
  std::string dir = c.cgroup_dir;
  uint64_t limit = c.cgroup_limit_bytes.value_or(kCppdiagUnknown);
  if (version == 0) {
    if (auto mem = CgroupReader().ReadMemory(); mem.ok()) {
      version = mem->version;
      dir = mem->dir;
      if (!c.cgroup_limit_bytes && mem->limit_bytes) limit = *mem->limit_bytes;
    }
  }
  if (version == 1 || version == 2) {
    usage_path = dir + (version == 1 ? "/memory.usage_in_bytes" : "/memory.current");
  }
  if (usage_path.size() >= sizeof s->cgroup_usage_path) usage_path.clear();
  std::string limit_path;
  if (!usage_path.empty()) {
    limit_path = dir + (version == 1 ? "/memory.limit_in_bytes" : "/memory.max");
  }

  // Updated under the dump lock, so a dump never sees half a template.
  pid_t me = Tid();
  for (;;) {
    pid_t expected = 0;
    if (s->owner.compare_exchange_strong(expected, me)) break;
    ::sched_yield();
  }
  std::memcpy(s->name_template, tmpl.c_str(), tmpl.size() + 1);
  s->cgroup_version = usage_path.empty() ? 0 : version;
  std::memset(s->cgroup_usage_path, 0, sizeof s->cgroup_usage_path);
  std::memcpy(s->cgroup_usage_path, usage_path.c_str(), usage_path.size());
  std::memset(s->cgroup_limit_path, 0, sizeof s->cgroup_limit_path);
  std::memcpy(s->cgroup_limit_path, limit_path.c_str(), limit_path.size());
  s->cgroup_limit = limit;
  s->timeout_ms = c.thread_timeout_ms;
  s->writeback_bytes = c.writeback_bytes;
  s->writer_stall_timeout_ms = c.writer_stall_timeout_ms;
  s->default_type.store(static_cast<int>(c.default_type));
  if (c.dump_dir != s->dump_dir || s->dump_dir_fd.load() < 0) {
    CloseOwned(&s->dump_dir_fd);
    std::memcpy(s->dump_dir, c.dump_dir.c_str(), c.dump_dir.size() + 1);
    // A directory missing now is opened when the first request needs it;
    // the crash handler and the watchdog do not need it.
    (void)OpenDumpDir(s);
  }
  s->owner.store(0);
  return OkStatus();
}

// One shared page for what a fork-mode child reports back (at `at`, replacing
// what is there, or anywhere). Null on failure.
ForkReport* MapReportPage(void* at) {
  static_assert(sizeof(ForkReport) <= kReportPageBytes);
  void* page = ::mmap(at, kReportPageBytes, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS | (at != nullptr ? MAP_FIXED : 0), -1, 0);
  if (page == MAP_FAILED) return nullptr;
  ::madvise(page, kReportPageBytes, MADV_DONTDUMP);
  return new (page) ForkReport();
}

Status Allocate(State* s, const SelfDumpConfig& c) {
  s->max_mappings = std::max<size_t>(c.max_mappings, 64);
  s->maps_capacity = (s->max_mappings * kBytesPerMapsLine + 4095) & ~size_t{4095};
  size_t mapping_bytes = (s->max_mappings * sizeof(MappingSnapshot) + 4095) & ~size_t{4095};
  s->region_size = s->maps_capacity + mapping_bytes + kSinkBufferBytes;
  void* p = ::mmap(nullptr, s->region_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) return Error::FromErrno("mmap", "self-dump buffers");
  ::madvise(p, s->region_size, MADV_DONTDUMP);
  s->region = p;
  auto* bytes = static_cast<uint8_t*>(p);
  s->maps_text = reinterpret_cast<char*>(bytes);
  s->mappings = reinterpret_cast<MappingSnapshot*>(bytes + s->maps_capacity);
  s->sink_buffer = bytes + s->maps_capacity + mapping_bytes;

  // Partial inclusions: a stack per thread, a header page per mapping, and
  // the module list (a few ranges per module).
  size_t extra = c.max_threads + size_t{4} * 4096;
  auto writer = CoreWriterBuffersOwner::Allocate(s->max_mappings, extra, c.io_buffer_bytes);
  if (!writer) return writer.error();
  s->writer.emplace(std::move(*writer));

  int signal = c.capture_signal != 0 ? c.capture_signal : SIGRTMAX - 3;
  CPPDIAG_RETURN_IF_ERROR(InstallThreadCapture(signal, c.max_threads));
  if (int err = OpenProcFiles(s)) return Error(err, "open", "/proc/self files");
  s->reserve.Fill();

  s->report = MapReportPage(nullptr);
  if (s->report == nullptr) return Error::FromErrno("mmap", "self-dump shared page");

  LoadStatic(s);
  s->snapshot.SetStatic(s->auxv, s->auxv_size, s->comm, s->psargs);
  s->xsave_layout_size = BuildXsaveLayout(s->xsave_layout, sizeof s->xsave_layout);
  s->snapshot.SetXsaveLayout(s->xsave_layout, s->xsave_layout_size);
  // The buffers above (and the writer's and the thread capture's) are
  // MADV_DONTDUMP: no dump stores them (memory_plan.h).
  return OkStatus();
}

// --- the dump path (async-signal-safe from here on) ---

int Lock(State* s, bool wait) {
  pid_t me = Tid();
  for (;;) {
    uint32_t seen = s->unlocked.load(std::memory_order_acquire);
    pid_t expected = 0;
    if (s->owner.compare_exchange_strong(expected, me)) return 0;
    if (expected == me) return EDEADLK;
    if (!wait) return EBUSY;
    timespec ts{0, 100L * 1000 * 1000};
    ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&s->unlocked), FUTEX_WAIT | FUTEX_PRIVATE_FLAG,
              seen, &ts, nullptr, 0);
  }
}

void Unlock(State* s) {
  s->owner.store(0, std::memory_order_release);
  s->unlocked.fetch_add(1, std::memory_order_acq_rel);
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&s->unlocked), FUTEX_WAKE | FUTEX_PRIVATE_FLAG,
            INT_MAX, nullptr, nullptr, 0);
}

// The dump lock for a scope: released on every way out of it.
class ScopedDumpLock {
 public:
  ScopedDumpLock(State* s, bool wait) : s_(s), err_(Lock(s, wait)) {}
  ~ScopedDumpLock() {
    if (err_ == 0) Unlock(s_);
  }
  ScopedDumpLock(const ScopedDumpLock&) = delete;
  ScopedDumpLock& operator=(const ScopedDumpLock&) = delete;
  int error() const { return err_; }  // 0: held

 private:
  State* s_;
  int err_;
};

int ExpandName(State* s, const char* reason, int64_t now, char* out, size_t size) {
  struct utsname u;
  const char* host = ::uname(&u) == 0 ? u.nodename : "localhost";
  DumpNameVars vars{Pid(), s->exe, host, now, reason != nullptr ? reason : ""};
  return ExpandDumpName(s->name_template, vars, out, size);
}

uint64_t ReadCgroupUsage(State* s) {
  if (s->cgroup_version == 0) return kCppdiagUnknown;
  int fd = OpenProc(s->cgroup_usage_path, O_RDONLY);
  if (fd < 0) return kCppdiagUnknown;
  char buf[32];
  ssize_t n = HANDLE_EINTR(::read(fd, buf, sizeof buf));
  ::close(fd);
  uint64_t v = 0;
  ssize_t i = 0;
  for (; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i)
    v = v * 10 + static_cast<uint64_t>(buf[i] - '0');
  return i > 0 ? v : kCppdiagUnknown;
}

int WriteSnapshot(State* s, const SelfDumpRequest& req, DumpType type, const timespec& now,
                  const CaptureResult& capture, int fd, pid_t pid, pid_t ppid, SelfDumpResult* res);

// With every other thread stopped: snapshot and write.
// `pid`/`ppid`: the identity the core reports (a fork child reports its
// parent's). Progress goes to the shared report.
int WriteStopped(State* s, const SelfDumpRequest& req, DumpType type, const timespec& now,
                 const CaptureResult& capture, int fd, pid_t pid, pid_t ppid, SelfDumpResult* res) {
  // Optional (refused to a non-dumpable process): without it every page of a
  // planned range is read.
  s->reserve.GiveOne();
  s->pagemap_fd.store(OpenProc("/proc/self/pagemap", O_RDONLY), std::memory_order_release);
  ConfigureSnapshot(s);
  int err = WriteSnapshot(s, req, type, now, capture, fd, pid, ppid, res);
  CloseOwned(&s->pagemap_fd);
  ConfigureSnapshot(s);
  return err;
}

int WriteSnapshot(State* s, const SelfDumpRequest& req, DumpType type, const timespec& now,
                  const CaptureResult& capture, int fd, pid_t pid, pid_t ppid,
                  SelfDumpResult* res) {
  bool truncated = false;
  if (int err = s->snapshot.Load(&truncated)) {
    res->failed_call = "read /proc/self/smaps";
    return err;
  }
  res->mappings_truncated = truncated;
  s->snapshot.SetThreads(capture.threads, capture.count);
  s->snapshot.SetSiginfo(req.siginfo);
  s->snapshot.SetStackCopy(capture.stack_copy.start, capture.stack_copy.data,
                           capture.stack_copy.size);

  CppdiagInfo info;
  info.unix_time_sec = now.tv_sec;
  info.unix_time_nsec = static_cast<uint32_t>(now.tv_nsec);
  info.pid = pid;
  info.signal = req.siginfo != nullptr ? req.siginfo->si_signo : 0;
  info.dump_type = DumpTypeNumber(type);
  info.cgroup_version = static_cast<uint32_t>(s->cgroup_version);
  info.cgroup_usage_bytes = ReadCgroupUsage(s);
  info.cgroup_limit_bytes = s->cgroup_version != 0 ? s->cgroup_limit : kCppdiagUnknown;
  info.threads = static_cast<uint32_t>(capture.count);
  info.threads_not_captured = static_cast<uint32_t>(capture.not_captured + capture.not_listed);
  CopyReason(req.reason, &info);

  CoreWriterOptions options;
  options.type = type;
  options.info = &info;
  options.providers = s->providers;
  options.provider_count = CopyNoteProviders(s->providers, kMaxNoteProviders);

  FileSink sink(fd, s->sink_buffer, kSinkBufferBytes, s->writeback_bytes);
  ProgressSink progress(&sink, s->report);
  ParentIdentitySnapshot snapshot(s->snapshot, pid, ppid);
  CoreWriteStats stats;
  int err = WriteElfCore(snapshot, options, s->writer->get(), &progress, &stats);
  res->threads = static_cast<uint32_t>(capture.count);
  res->threads_not_captured = info.threads_not_captured;
  res->size_bytes = stats.file_size;
  res->data_bytes = stats.data_bytes;
  if (err != 0) {
    bool sink_failed = std::strcmp(stats.failed_step, "plan") != 0;
    res->failed_call =
        sink_failed && sink.failed_call()[0] != '\0' ? sink.failed_call() : stats.failed_step;
  }
  return err;
}

uint64_t MonoNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000 + static_cast<uint64_t>(ts.tv_nsec);
}

void AppendReason(SelfDumpResult* res, size_t* n, const char* text) {
  while (*text != '\0' && *n + 1 < sizeof res->mode_reason) res->mode_reason[(*n)++] = *text++;
  res->mode_reason[*n] = '\0';
}

// kAuto: fork when the cgroup has room for copy-on-write (fork_snapshot.h).
SelfDumpMode ResolveMode(State* s, SelfDumpMode asked, SelfDumpResult* res) {
  if (asked != SelfDumpMode::kSuspend && !s->fork_mode_available) {
    size_t n = 0;
    AppendReason(res, &n, "forked child without a report page of its own");
    return SelfDumpMode::kSuspend;
  }
  if (asked != SelfDumpMode::kAuto) {
    size_t n = 0;
    AppendReason(res, &n, "requested");
    return asked;
  }
  uint64_t limit =
      s->cgroup_limit_path[0] != '\0' ? ReadCgroupBytes(s->cgroup_limit_path) : kUnknownBytes;
  uint64_t usage = limit != kUnknownBytes ? ReadCgroupUsage(s) : kUnknownBytes;
  static_assert(kCppdiagUnknown == kUnknownBytes);
  uint64_t anon = limit != kUnknownBytes ? ReadSelfRssAnon() : kUnknownBytes;
  return ChooseForkForHeadroom(limit, usage, anon, res->mode_reason, sizeof res->mode_reason)
             ? SelfDumpMode::kFork
             : SelfDumpMode::kSuspend;
}

// The fork-mode child: writes the core from its copy of the memory, with the
// parent's identity, reports through the shared page and exits. Its
// /proc/self files are its own (the same memory, as of the clone).
[[noreturn]] void ForkChildMain(State* s, const SelfDumpRequest& req, DumpType type,
                                const timespec& now, const CaptureResult& capture, int fd,
                                pid_t pid, pid_t ppid) {
  if (!PrepareForkChild(pid)) ::_exit(3);
  ForkReport* r = s->report;
  SelfDumpResult local;
  int err = OpenProcFiles(s);
  if (err != 0) {
    local.failed_call = "open /proc/self";
  } else {
    err = WriteStopped(s, req, type, now, capture, fd, pid, ppid, &local);
  }
  r->err = err;
  r->size_bytes = local.size_bytes;
  r->data_bytes = local.data_bytes;
  r->threads = local.threads;
  r->threads_not_captured = local.threads_not_captured;
  r->mappings_truncated = local.mappings_truncated;
  r->failed_call = local.failed_call;
  r->done.store(1, std::memory_order_release);
  ::_exit(err == 0 ? 0 : 1);
}

// The parent: waits for the child (reporting progress) and takes its result.
int WaitForWriter(State* s, const SelfDumpRequest& req, pid_t child, SelfDumpResult* res) {
  int status = 0;
  uint32_t interval = req.progress_interval_ms != 0 ? req.progress_interval_ms : 200;
  int werr = WaitForkChild(child, s->report, interval, s->writer_stall_timeout_ms, req.progress,
                           req.progress_context, &status);
  const ForkReport* r = s->report;
  bool done = r->done.load(std::memory_order_acquire) != 0;
  int err = 0;
  if (done) {
    err = r->err;
    res->size_bytes = r->size_bytes;
    res->data_bytes = r->data_bytes;
    res->threads = r->threads;
    res->threads_not_captured = r->threads_not_captured;
    res->mappings_truncated = r->mappings_truncated;
    res->failed_call = r->failed_call;
  }
  if (werr == ETIMEDOUT) {
    res->failed_call = "dump writer made no progress (killed)";
    return ETIMEDOUT;
  }
  if (werr == 0 && WIFSIGNALED(status)) {
    res->writer_signal = WTERMSIG(status);
    res->failed_call = "dump writer killed by a signal";
    return EIO;
  }
  if (!done) {
    res->failed_call = werr != 0 ? "wait for the dump writer" : "dump writer exited early";
    return werr != 0 ? werr : EIO;
  }
  return err;
}

// Puts the final path in res->path and opens the dump file (s->file): in the
// dump directory's descriptor for `in_dump_dir` requests, by path otherwise.
int OpenFile(State* s, const SelfDumpRequest& req, const timespec& now, SelfDumpResult* res) {
  res->failed_call = "path";
  int beneath = -1;
  const char* open_path = res->path;
  if (req.path == nullptr) {
    res->failed_call = "expand name";
    if (int err = ExpandName(s, req.reason, now.tv_sec, res->path, sizeof res->path)) return err;
  } else if (req.in_dump_dir) {
    size_t n = 0;
    if (s->dump_dir_fd.load(std::memory_order_acquire) < 0) {
      if (int err = OpenDumpDir(s)) {
        AppendPath(res->path, sizeof res->path, &n, s->dump_dir);
        res->failed_call = "open the dump directory (CPPDIAG_DUMP_DIR)";
        return err;
      }
    }
    if (!AppendPath(res->path, sizeof res->path, &n, s->dump_dir_path) ||
        !AppendPath(res->path, sizeof res->path, &n, "/") ||
        !AppendPath(res->path, sizeof res->path, &n, req.path)) {
      return ENAMETOOLONG;
    }
    beneath = s->dump_dir_fd.load(std::memory_order_relaxed);
    open_path = req.path;
  } else if (!CopyString(res->path, sizeof res->path, req.path)) {
    return ENAMETOOLONG;
  }
  res->failed_call = "open";
  if (int err = OpenDumpDirectory(beneath, open_path, &s->reserve, &s->file)) {
    if (beneath >= 0 && err == ELOOP) res->failed_call = "open beneath the dump directory";
    return err;
  }
  return CreateDumpFile(&s->reserve, &s->file);
}

int WriteLocked(State* s, const SelfDumpRequest& req, SelfDumpResult* res) {
  if (Pid() != s->pid) {  // a fork child: the /proc/self files still show the parent
    s->reserve.Fill();
    if (int err = OpenProcFiles(s)) {
      res->failed_call = "open /proc/self";
      return err;
    }
  }
  DumpType type = req.type.value_or(static_cast<DumpType>(s->default_type.load()));
  res->type = type;
  // Decided before any thread stops (it reads files).
  SelfDumpMode mode = ResolveMode(s, req.mode, res);
  timespec now;
  ::clock_gettime(CLOCK_REALTIME, &now);
  // Open first: a directory we cannot write to fails before any thread stops.
  if (int err = OpenFile(s, req, now, res)) {
    DiscardDumpFile(&s->file);
    s->reserve.Fill();
    return err;
  }
  int fd = s->file.fd.load(std::memory_order_relaxed);
  res->failed_call = "";

  CaptureOptions co;
  co.own_context = req.ucontext;
  co.own_signal = req.siginfo != nullptr ? req.siginfo->si_signo : 0;
  co.task_dir_fd = s->task_fd.load(std::memory_order_relaxed);
  co.timeout_ms = s->timeout_ms;
  // This frame stays until the dump is written; what lies below it is kept.
  co.keep_stack_top = reinterpret_cast<uint64_t>(__builtin_frame_address(0));
  CaptureResult capture;
  s->report->Reset();
  pid_t pid = Pid();
  pid_t ppid = ::getppid();
  uint64_t stop_ns = MonoNs();
  int err = CaptureAllThreads(co, &capture);
  if (err != 0) {
    res->failed_call = "stop threads";
    ReleaseThreads();
    res->pause_ns = MonoNs() - stop_ns;
  } else if (mode == SelfDumpMode::kFork) {
    pid_t child = RawFork();
    if (child == 0) ForkChildMain(s, req, type, now, capture, fd, pid, ppid);
    if (child > 0) {
      ReleaseThreads();  // the child holds the snapshot: run on
      res->pause_ns = MonoNs() - stop_ns;
      err = WaitForWriter(s, req, child, res);
    } else {  // threads still stopped: write as kSuspend does
      mode = SelfDumpMode::kSuspend;
      size_t n = 0;
      res->mode_reason[0] = '\0';
      char name[16] = {};  // "EAGAIN" of "EAGAIN (...)"
      const char* full = ErrnoName(-child);
      for (size_t i = 0; i + 1 < sizeof name && full[i] != '\0' && full[i] != ' '; ++i) {
        name[i] = full[i];
      }
      AppendReason(res, &n, "clone failed (");
      AppendReason(res, &n, name);
      AppendReason(res, &n, "): wrote with threads suspended");
      err = WriteStopped(s, req, type, now, capture, fd, pid, ppid, res);
      ReleaseThreads();
      res->pause_ns = MonoNs() - stop_ns;
    }
  } else {
    err = WriteStopped(s, req, type, now, capture, fd, pid, ppid, res);
    ReleaseThreads();
    res->pause_ns = MonoNs() - stop_ns;
  }
  res->mode = mode;

  if (err == 0) {
    // A name from the template that is taken gets ".1", ".2"... (two dumps
    // in the same second); an explicit path is replaced only when asked.
    err = PublishDumpFile(&s->file, req.path == nullptr, req.replace_existing, res->path,
                          sizeof res->path, &res->failed_call);
  }
  if (err == 0) {
    res->failed_call = "";
    g_dumps_written.fetch_add(1, std::memory_order_relaxed);
    SyncDumpDirectory(s->file);
  }
  DiscardDumpFile(&s->file);  // after a success: only closes the directory
  s->reserve.Fill();
  return err;
}

}  // namespace

Status PrepareSelfDump(const SelfDumpConfig& config) {
  State* s = g_state.load();
  if (s == nullptr) {
    auto owned = std::make_unique<State>();
    CPPDIAG_RETURN_IF_ERROR(Allocate(owned.get(), config));
    CPPDIAG_RETURN_IF_ERROR(Configure(owned.get(), config));
    g_state.store(owned.release(), std::memory_order_release);  // lives until exit
    return OkStatus();
  }
  return Configure(s, config);
}

const char* SelfDumpModeName(SelfDumpMode mode) {
  switch (mode) {
    case SelfDumpMode::kSuspend:
      return "suspended";
    case SelfDumpMode::kFork:
      return "fork";
    case SelfDumpMode::kAuto:
      return "auto";
  }
  return "?";
}

uint64_t SelfDumpsWritten() { return g_dumps_written.load(std::memory_order_relaxed); }

bool SelfDumpPrepared() { return g_state.load(std::memory_order_acquire) != nullptr; }

DumpType SelfDumpDefaultType() {
  State* s = g_state.load(std::memory_order_acquire);
  return s == nullptr ? DumpType::kHeap : static_cast<DumpType>(s->default_type.load());
}

int WriteSelfDump(const SelfDumpRequest& request, SelfDumpResult* result) noexcept {
  SelfDumpResult local;
  SelfDumpResult* res = result != nullptr ? result : &local;
  res->path[0] = '\0';
  res->size_bytes = res->data_bytes = 0;
  res->threads = res->threads_not_captured = 0;
  res->mappings_truncated = false;
  res->failed_call = "";
  res->mode = SelfDumpMode::kSuspend;
  res->mode_reason[0] = '\0';
  res->pause_ns = res->duration_ns = 0;
  res->writer_signal = 0;
  uint64_t start_ns = MonoNs();
  State* s = g_state.load(std::memory_order_acquire);
  if (s == nullptr) {
    res->failed_call = "PrepareSelfDump";
    return EINVAL;
  }
  res->type = request.type.value_or(static_cast<DumpType>(s->default_type.load()));
  int err = 0;
  {
    ScopedDumpLock lock(s, request.wait_if_busy);
    if (lock.error() != 0) {
      res->failed_call = "wait for the dump in progress";
      return lock.error();
    }
    err = WriteLocked(s, request, res);
  }
  res->duration_ns = MonoNs() - start_ns;
  return err;
}

void ForgetSelfDumpStateInForkedChild() noexcept {
  State* s = g_state.load(std::memory_order_acquire);
  if (s == nullptr) return;
  for (std::atomic<int>* fd :
       {&s->maps_fd, &s->task_fd, &s->coredump_filter_fd, &s->dump_dir_fd, &s->pagemap_fd}) {
    CloseOwned(fd);
  }
  s->reserve.CloseAll();
  s->file.CloseDescriptors();  // a dump in flight: its file stays the parent's
  ConfigureSnapshot(s);
  s->pid = 0;  // the next dump opens this process's own /proc files and reserve
  // The report page is shared with the parent, whose fork-mode writer may be
  // using it: a page of our own at the same address (still left out of dumps).
  if (s->report != &s->private_report && MapReportPage(s->report) == nullptr) {
    s->report = &s->private_report;
    s->fork_mode_available = false;
  }
  // A dump in flight in another thread when the process forked: its thread
  // is not here, and neither is its dump.
  s->owner.store(0, std::memory_order_release);
  s->unlocked.fetch_add(1, std::memory_order_acq_rel);
}

int ExpandSelfDumpName(const char* reason, char* out, size_t out_size) {
  State* s = g_state.load(std::memory_order_acquire);
  if (s == nullptr) return EINVAL;
  timespec now;
  ::clock_gettime(CLOCK_REALTIME, &now);
  return ExpandName(s, reason, now.tv_sec, out, out_size);
}

}  // namespace cppdiag::dump
