// The self-dump's state, shared by its parts: preparation (normal context),
// and the dump path, the fork-mode writer and the forked-child reset
// (async-signal-safe). Private to diag/dump.
//
// Async-signal-safe: every function declared here (no allocation, no locks,
// no stdio, no exceptions).
#pragma once

#include <limits.h>
#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "common/async_safe.h"
#include "diag/dump/cppdiag_note.h"
#include "diag/dump/dump_file.h"
#include "diag/dump/elf_core_writer.h"
#include "diag/dump/fork_snapshot.h"
#include "diag/dump/internal/dump_lock.h"
#include "diag/dump/note_provider.h"
#include "diag/dump/self_dump.h"
#include "diag/dump/self_snapshot.h"
#include "diag/dump/thread_capture.h"
#include "diag/dump/x86_64_registers.h"

namespace cppdiag::dump::internal {

inline constexpr size_t kSinkBufferBytes = 64 << 10;
inline constexpr size_t kAuxvBytes = 4096;

struct State {
  // Configuration, in fixed buffers for the signal path; changed only under
  // `lock`, so a dump never sees half a template.
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
  pid_t pid = 0;  // of the process that opened the /proc files (a fork child reopens them)

  // Every descriptor the dump state owns, atomic so that
  // ForgetSelfDumpStateInForkedChild sees what another thread had open when
  // the process forked. No handle on this process's memory is kept between
  // dumps (a child that forks and drops privileges would inherit it): mem and
  // pagemap (whose PFNs depend on the opener's capabilities) are open only
  // while a dump is written, by the process that writes it (the fork-mode
  // child opens its own, so it reads its copy). Memory is read through mem
  // because process_vm_readv pins pages and so copies every shared
  // copy-on-write page the fork-mode child reads (self_snapshot.h); without
  // mem (non-dumpable, no descriptor left) it is read with process_vm_readv.
  std::atomic<int> maps_fd{-1}, task_fd{-1};  // from PrepareSelfDump on (maps_fd: smaps)
  std::atomic<int> coredump_filter_fd{-1};    // optional
  std::atomic<int> dump_dir_fd{-1};           // CPPDIAG_DUMP_DIR (O_PATH), once opened
  std::atomic<int> mem_fd{-1};                // while a dump is written
  std::atomic<int> pagemap_fd{-1};            // while a dump is written
  DescriptorReserve reserve;                  // for a process out of descriptors
  DumpFile file;                              // the dump being written

  char dump_dir[PATH_MAX] = {};       // CPPDIAG_DUMP_DIR as configured
  char dump_dir_path[PATH_MAX] = {};  // what it resolved to when opened

  // Buffers reserved at preparation (MADV_DONTDUMP: no dump stores them).
  std::optional<CoreWriterBuffersOwner> writer;
  ScopedMmap region;  // maps text, mappings, sink buffer
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

  DumpLock lock;  // one dump (or reconfiguration) at a time
};

// The prepared state (null before PrepareSelfDump): lives until exit.
extern std::atomic<State*> g_state;

// What one dump writes: the request, and the identity the core reports (a
// fork child reports its parent's pid and ppid).
struct DumpJob {
  const SelfDumpRequest* request = nullptr;
  DumpType type = DumpType::kHeap;
  timespec now{};  // CLOCK_REALTIME at the start
  const CaptureResult* capture = nullptr;
  int fd = -1;  // the dump file
  pid_t pid = 0, ppid = 0;
};

int OpenProc(const char* path, int flags);
// Closes a descriptor the state owns (the slot is cleared first: a fork in
// between leaks it to the child rather than leaving a number the child would
// close after it was reused).
void CloseOwned(std::atomic<int>* fd);
// Points the snapshot at the descriptors open now.
void ConfigureSnapshot(State* s);
// (Re)opens smaps, the task directory and coredump_filter of this process.
// Returns 0 or an errno value.
int OpenProcFiles(State* s);
// Opens CPPDIAG_DUMP_DIR (O_PATH) and notes what it resolved to; 0 or errno.
int OpenDumpDir(State* s);
// One shared page for what a fork-mode child reports back (at `at`,
// replacing what is there, or anywhere). Null on failure.
ForkReport* MapReportPage(void* at);
// The cgroup's usage now, or kCppdiagUnknown.
uint64_t ReadCgroupUsage(const State* s);

// With every other thread stopped (or in the fork-mode child): snapshots
// this process and writes the core to job.fd. 0 or an errno value; the
// result's sizes and failed_call are filled in.
int WriteStopped(State* s, const DumpJob& job, SelfDumpResult* res);

// kAuto: fork when the cgroup has room for copy-on-write (fork_snapshot.h).
SelfDumpMode ResolveMode(State* s, SelfDumpMode asked, SelfDumpResult* res);
// Fork mode, with every thread captured: clones the child that writes the
// dump from its copy of the memory (it never returns here). Returns its
// pid, or -errno when the clone failed.
pid_t ForkWriter(State* s, const DumpJob& job);
// The parent: waits for the child (forwarding progress, killing a writer
// that stalls) and takes its result. 0 or an errno value.
int WaitForWriter(State* s, const SelfDumpRequest& req, pid_t child, SelfDumpResult* res);
// Appends to res->mode_reason (at *n), cut to fit.
void AppendReason(SelfDumpResult* res, size_t* n, const char* text);

}  // namespace cppdiag::dump::internal
