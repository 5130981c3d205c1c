// Self-dump: the process writes an ELF core of itself, with no ptrace and no
// helper process (what .NET's runtime does for createdump-less dumps). Used by
// the crash handler, the pre-OOM watchdog and dumps requested over the
// diagnostic socket.
//
// Two modes (SelfDumpRequest::mode):
//   kSuspend  the other threads stay stopped while the whole core is written
//             (the crash handler and the watchdog use it).
//   kFork     the threads are stopped only to capture their registers and to
//             take a copy-on-write snapshot with a raw clone syscall (no
//             glibc fork(), no atfork handlers); they run on at once, and the
//             child writes the core from its own identical memory, with the
//             parent's pid and tids, then exits. The caller waits for it. The
//             pause is then the capture plus the clone (page-table copy),
//             milliseconds even for GiBs (fork_snapshot.h).
//   kAuto     kFork unless the memory cgroup lacks the headroom for
//             copy-on-write growth (ChooseForkForHeadroom in fork_snapshot.h);
//             then kSuspend. The result says which and why.
// A failed clone (EAGAIN, ENOMEM) falls back to kSuspend, with the threads
// still stopped.
//
// How: every other thread is stopped in a signal handler that records its
// registers (thread_capture.h), the memory is read through /proc/self/mem,
// opened only while the dump is written (process_vm_readv where it cannot
// be: it would copy every page the fork-mode child reads, self_snapshot.h),
// and the ELF core writer writes an unnamed
// O_TMPFILE file (mode 0600) in the target directory, fsyncs it and links it
// at `<path>` only when it is complete; where the filesystem has no
// O_TMPFILE, `<path>.tmp-<pid>` renamed to `<path>` (dump_file.h). On any
// failure nothing carries the final name and no temporary file is left; a
// process killed mid-dump leaves nothing (but the fallback's temporary file).
// Dirty page cache is bounded while writing (sink.h).
//
// PrepareSelfDump runs once at start, in normal context: it opens
// /proc/self/smaps, /proc/self/task and /proc/self/coredump_filter (mem and
// pagemap are opened only while a dump is written), the dump directory (SelfDumpConfig::dump_dir),
// reserve descriptors for the dump file, and reserves every buffer the dump needs (mmap
// + MAP_POPULATE, so the memory is already charged to the cgroup when a dump runs near the limit):
// about 1 MiB of I/O buffer, 2 MiB for the maps lines of smaps, and per-thread and
// per-mapping tables (~10 MiB with the defaults). WriteSelfDump is
// async-signal-safe: no malloc, no locks, no stdio, no exceptions. It may be
// called from a signal handler or any thread.
//
//   // At start:
//   cppdiag::dump::SelfDumpConfig config;
//   config.default_type = diag_config.dump_type;   // CPPDIAG_DUMP_TYPE
//   config.name_template = diag_config.dump_name;  // CPPDIAG_DUMP_NAME
//   if (auto st = cppdiag::dump::PrepareSelfDump(config); !st) {
//     fprintf(stderr, "%s\n", st.error().message().c_str());
//   }
//
//   // Later, from any thread (or a signal handler):
//   cppdiag::dump::SelfDumpRequest request;
//   request.reason = "on-demand";
//   cppdiag::dump::SelfDumpResult result;
//   if (int err = cppdiag::dump::WriteSelfDump(request, &result)) {
//     // result.failed_call says what failed ("open", "pwrite", "rename"...), on result.path
//   } else {
//     // result.path holds the dump, result.size_bytes its size
//   }
#pragma once

#include <limits.h>
#include <signal.h>
#include <ucontext.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"
#include "diag/dump/dump_type.h"

namespace cppdiag::dump {

struct SelfDumpConfig {
  DumpType default_type = DumpType::kHeap;
  // CPPDIAG_DUMP_NAME: %p %e %h %t %r %% (dump_name.h). Empty: $TMPDIR/core.%e.%p.%t.
  std::string name_template;
  // The memory cgroup reported in the cppdiag note. cgroup_version 0: found
  // at prepare time (common/cgroup.h); the usage is read when dumping.
  int cgroup_version = 0;
  std::string cgroup_dir;
  std::optional<uint64_t> cgroup_limit_bytes;
  // The real-time signal that stops threads; 0: SIGRTMAX - 3. It must have no
  // other handler.
  int capture_signal = 0;
  size_t max_threads = 1024;    // threads past this are left out (and counted)
  size_t max_mappings = 16384;  // mappings past this are left out (and reported)
  size_t io_buffer_bytes = 1 << 20;
  uint32_t thread_timeout_ms = 1000;   // for all threads to stop
  uint64_t writeback_bytes = 8 << 20;  // dirty page cache bound (sink.h)
  // Fork mode: a writer that writes no byte for this long is killed
  // (SIGKILL) and the dump fails with ETIMEDOUT. 0: wait for ever.
  uint32_t writer_stall_timeout_ms = 120000;
  // CPPDIAG_DUMP_DIR: where requests with `in_dump_dir` are confined. Opened
  // here (O_PATH; a symbolic link is followed now, once), or at the first
  // such request if it does not exist yet. Empty: none.
  std::string dump_dir;
};

// Opens the /proc files, reserves the buffers, installs the thread-capture
// signal handler. Calling it again updates default_type, name_template and
// the cgroup (buffer sizes and the signal stay as first prepared).
Status PrepareSelfDump(const SelfDumpConfig& config);

bool SelfDumpPrepared();

enum class SelfDumpMode { kSuspend, kFork, kAuto };
// "suspended", "fork", "auto" (what the socket's reply says). Async-signal-safe.
const char* SelfDumpModeName(SelfDumpMode mode);
// The default type of the prepared configuration. Async-signal-safe.
DumpType SelfDumpDefaultType();

struct SelfDumpRequest {
  std::optional<DumpType> type;        // default: SelfDumpConfig::default_type
  const char* reason = "on-demand";    // %r and the cppdiag note: "crash", "oom-watchdog"...
  const siginfo_t* siginfo = nullptr;  // the signal that caused the dump (NT_SIGINFO)
  // The calling thread's context from its signal handler: it becomes the
  // first thread's registers (the crashing frame). Null: the caller's own
  // registers where it called WriteSelfDump.
  const ucontext_t* ucontext = nullptr;
  const char* path = nullptr;  // the final path; null: expand the name template
  // `path` is relative to SelfDumpConfig::dump_dir and is created beneath
  // that directory's descriptor, with no ".." and no symbolic link on the
  // way (dump_file.h): ELOOP for a link, EXDEV for an escape. The result's
  // path is then the dump directory's resolved path + "/" + `path`.
  bool in_dump_dir = false;
  // Another dump is being written: wait for it (the crash handler does) rather
  // than fail with EBUSY.
  bool wait_if_busy = false;
  // An existing file at `path` is replaced only when this is true (the
  // socket's "overwrite"). A taken name from the template gets ".1", ".2"...
  bool replace_existing = false;
  // How to hold the process while writing (see the top of this file).
  SelfDumpMode mode = SelfDumpMode::kSuspend;
  // Fork mode only: called from the calling thread about every
  // `progress_interval_ms` while the child writes (the other threads are
  // running again, so it runs in the caller's own context), with the bytes
  // of the core written so far and its size (0 until known). It should not
  // throw; if it does, the exception is dropped, it is not called again and
  // the dump goes on.
  void (*progress)(void* context, uint64_t bytes_written, uint64_t bytes_total) = nullptr;
  void* progress_context = nullptr;
  uint32_t progress_interval_ms = 200;
};

struct SelfDumpResult {
  char path[PATH_MAX] = {};  // the final path (on failure: the one attempted)
  DumpType type = DumpType::kHeap;
  uint64_t size_bytes = 0;  // the core's size (st_size; holes included)
  uint64_t data_bytes = 0;  // bytes stored (what the disk holds, roughly)
  uint32_t threads = 0;
  // Threads whose registers came from /proc only (they did not stop in
  // time), plus threads left out (past max_threads).
  uint32_t threads_not_captured = 0;
  bool mappings_truncated = false;
  const char* failed_call = "";                // on failure: "open", "pwrite", "fsync", "rename"...
  SelfDumpMode mode = SelfDumpMode::kSuspend;  // the mode used: kSuspend or kFork
  char mode_reason[128] = {};  // why: "requested", "cgroup headroom 20 MiB < 64 MiB ...", ...
  // Time the other threads were stopped (from the first stop signal to their
  // release), and the whole dump, in nanoseconds.
  uint64_t pause_ns = 0;
  uint64_t duration_ns = 0;
  int writer_signal = 0;  // fork mode: the signal that killed the child (failure EIO)
};

// Writes a dump. Returns 0 or an errno value (EBUSY: another dump is being
// written and `wait_if_busy` is false; EINVAL: not prepared; EDEADLK: called
// while this thread is already writing one; EIO with `writer_signal` set: the
// fork-mode child was killed, e.g. by the OOM killer; ETIMEDOUT: the
// fork-mode child wrote nothing for `writer_stall_timeout_ms` and was
// killed). On failure no file is left. The dump lock is released on every
// path. Async-signal-safe (fork mode too; `progress` runs in the caller's
// context). Never throws.
int WriteSelfDump(const SelfDumpRequest& request, SelfDumpResult* result) noexcept;

// Dumps this process completed (renamed to their final name) since start,
// whatever asked for them. Async-signal-safe.
uint64_t SelfDumpsWritten();

// For a pthread_atfork child handler: closes every descriptor the dump state
// owns (/proc/<parent>/maps and task, the reserve descriptor, and those of a
// dump another thread was writing when the process forked), gives the child
// a fork-report page of its own and releases the dump lock that such a
// thread held. A later dump in the child opens the child's own /proc files.
// Async-signal-safe; does nothing before PrepareSelfDump.
void ForgetSelfDumpStateInForkedChild() noexcept;

// Expands the prepared name template for `reason` now (what WriteSelfDump
// does without a path). Returns 0 or an errno value. Async-signal-safe.
int ExpandSelfDumpName(const char* reason, char* out, size_t out_size);

}  // namespace cppdiag::dump
