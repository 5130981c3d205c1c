// Async-signal-safe: WriteSelfDump, ExpandSelfDumpName, SelfDumpDefaultType
// and everything they call (no allocation, no locks, no stdio, no
// exceptions). The self-dump's parts: preparation (self_dump_prepare.cc,
// normal context), its state (internal/self_dump_state.h, self_dump_state.cc),
// the write (self_dump_write.cc), fork mode (self_dump_fork.cc), and here the
// dump path: lock, name, file, thread capture, publish.
#include "diag/dump/self_dump.h"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include <cstring>

#include "common/async_safe.h"
#include "common/raw_log.h"
#include "diag/dump/internal/dump_name.h"
#include "diag/dump/internal/self_dump_state.h"

namespace cppdiag::dump {
namespace {

using internal::State;

// Dumps given their final name (crash, watchdog, on request): the counters'
// cppdiag_dumps_written_total. Lock-free, so the crash path may bump it.
std::atomic<uint64_t> g_dumps_written{0};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

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

int ExpandName(State* s, const char* reason, int64_t now, char* out, size_t size) {
  struct utsname u;
  const char* host = ::uname(&u) == 0 ? u.nodename : "localhost";
  DumpNameVars vars{CurrentPid(), s->exe, host, now, reason != nullptr ? reason : ""};
  return ExpandDumpName(s->name_template, vars, out, size);
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
      if (int err = internal::OpenDumpDir(s)) {
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

// With the threads captured: writes the dump in the mode decided, and
// releases the threads as soon as the mode allows. Returns 0 or errno.
int WriteCaptured(State* s, internal::DumpJob& job, SelfDumpMode* mode, uint64_t stop_ns,
                  SelfDumpResult* res) {
  if (*mode == SelfDumpMode::kFork) {
    pid_t child = internal::ForkWriter(s, job);
    if (child > 0) {
      ReleaseThreads();  // the child holds the snapshot: run on
      res->pause_ns = MonotonicNs() - stop_ns;
      return internal::WaitForWriter(s, *job.request, child, res);
    }
    // Threads still stopped: write as kSuspend does.
    *mode = SelfDumpMode::kSuspend;
    size_t n = 0;
    res->mode_reason[0] = '\0';
    internal::AppendReason(res, &n, "clone failed (");
    internal::AppendReason(res, &n, ErrnoName(-child));
    internal::AppendReason(res, &n, "): wrote with threads suspended");
  }
  int err = internal::WriteStopped(s, job, res);
  ReleaseThreads();
  res->pause_ns = MonotonicNs() - stop_ns;
  return err;
}

int WriteLocked(State* s, const SelfDumpRequest& req, SelfDumpResult* res) {
  if (CurrentPid() != s->pid) {  // a fork child: the /proc/self files still show the parent
    s->reserve.Fill();
    if (int err = internal::OpenProcFiles(s)) {
      res->failed_call = "open /proc/self";
      return err;
    }
  }
  internal::DumpJob job;
  job.request = &req;
  job.type = req.type.value_or(static_cast<DumpType>(s->default_type.load()));
  res->type = job.type;
  // Decided before any thread stops (it reads files).
  SelfDumpMode mode = internal::ResolveMode(s, req.mode, res);
  ::clock_gettime(CLOCK_REALTIME, &job.now);
  // Open first: a directory we cannot write to fails before any thread stops.
  if (int err = OpenFile(s, req, job.now, res)) {
    DiscardDumpFile(&s->file);
    s->reserve.Fill();
    return err;
  }
  job.fd = s->file.fd.load(std::memory_order_relaxed);
  res->failed_call = "";

  CaptureOptions co;
  co.own_context = req.ucontext;
  co.own_signal = req.siginfo != nullptr ? req.siginfo->si_signo : 0;
  co.task_dir_fd = s->task_fd.load(std::memory_order_relaxed);
  co.timeout_ms = s->timeout_ms;
  // This frame stays until the dump is written; what lies below it is kept.
  co.keep_stack_top = reinterpret_cast<uint64_t>(__builtin_frame_address(0));
  CaptureResult capture;
  job.capture = &capture;
  s->report->Reset();
  job.pid = CurrentPid();
  job.ppid = ::getppid();
  errno = 0;
  int nice = ::getpriority(PRIO_PROCESS, 0);
  job.nice = errno == 0 ? nice : 0;
  uint64_t stop_ns = MonotonicNs();
  int err = CaptureAllThreads(co, &capture);
  if (err != 0) {
    res->failed_call = "stop threads";
    ReleaseThreads();
    res->pause_ns = MonotonicNs() - stop_ns;
  } else {
    err = WriteCaptured(s, job, &mode, stop_ns, res);
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

bool SelfDumpPrepared() { return internal::g_state.load(std::memory_order_acquire) != nullptr; }

DumpType SelfDumpDefaultType() {
  State* s = internal::g_state.load(std::memory_order_acquire);
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
  uint64_t start_ns = MonotonicNs();
  State* s = internal::g_state.load(std::memory_order_acquire);
  if (s == nullptr) {
    res->failed_call = "PrepareSelfDump";
    return EINVAL;
  }
  res->type = request.type.value_or(static_cast<DumpType>(s->default_type.load()));
  int err = 0;
  {
    internal::ScopedDumpLock lock(&s->lock, request.wait_if_busy);
    if (lock.error() != 0) {
      res->failed_call = "wait for the dump in progress";
      return lock.error();
    }
    err = WriteLocked(s, request, res);
  }
  res->duration_ns = MonotonicNs() - start_ns;
  return err;
}

int ExpandSelfDumpName(const char* reason, char* out, size_t out_size) {
  State* s = internal::g_state.load(std::memory_order_acquire);
  if (s == nullptr) return EINVAL;
  timespec now;
  ::clock_gettime(CLOCK_REALTIME, &now);
  return ExpandName(s, reason, now.tv_sec, out, out_size);
}

}  // namespace cppdiag::dump
