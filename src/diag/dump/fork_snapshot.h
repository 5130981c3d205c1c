// The pieces of the self-dump's fork mode (self_dump.h, SelfDumpMode::kFork):
// the threads are stopped only to capture their registers and to take a
// copy-on-write snapshot of the process with a raw clone syscall; the child
// writes the core from its own (identical) memory while the parent runs on.
//
//   - ForkReport: what the child tells the parent, in a MAP_SHARED page
//     reserved at PrepareSelfDump (the progress counters and the result).
//   - ProgressSink: a Sink that forwards to another and publishes how far the
//     core has been written and its total size (read from the program
//     headers as they go by).
//   - ParentIdentitySnapshot: the child's view of the memory, with the
//     parent's pid, ppid and nice value (a core of the parent, not of the
//     helper).
//   - ChooseForkForHeadroom: kAuto's rule (below).
//   - RawFork, PrepareForkChild, WaitForkChild: the process plumbing.
//
// Async-signal-safe: everything here (no allocation, no locks, no stdio, no
// exceptions of its own); it runs in the dump path, possibly from a signal
// handler.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "diag/dump/process_snapshot.h"
#include "diag/dump/sink.h"

namespace cppdiag::dump {

// Written by the fork-mode child, read by the parent. Lives in a MAP_SHARED
// anonymous page; plain atomics (lock-free, no futex across processes).
struct ForkReport {
  std::atomic<uint64_t> bytes_written{0};  // core bytes written (or skipped as holes) so far
  std::atomic<uint64_t> bytes_total{0};    // the core's size once the headers are out; 0 before
  std::atomic<int> done{0};                // 1: the fields below are final
  int err = 0;                             // 0 or an errno value
  uint64_t size_bytes = 0;
  uint64_t data_bytes = 0;
  uint32_t threads = 0;
  uint32_t threads_not_captured = 0;
  bool mappings_truncated = false;
  // A string literal of the dump engine (same address in parent and child).
  const char* failed_call = "";

  void Reset();
};

static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared counters must be lock-free");

// Forwards to `inner` and keeps `report->bytes_written` / `bytes_total`
// current. The total comes from the ELF header and the program headers the
// core writer writes first (the end of the last PT_LOAD's data).
class ProgressSink : public Sink {
 public:
  ProgressSink(Sink* inner, ForkReport* report) : inner_(inner), report_(report) {}

  int Write(const void* data, size_t len) override;
  int Skip(uint64_t len) override;
  uint64_t offset() const override { return inner_->offset(); }
  int Finish(uint64_t size) override;

 private:
  void Inspect(uint64_t at, const uint8_t* data, size_t len);

  Sink* inner_;
  ForkReport* report_;
  uint64_t ph_start_ = 0, ph_end_ = 0;  // the program header table, once known
  uint64_t total_ = 0;
};

// `inner` with another process identity: the child reports the parent's pid
// and ppid in NT_PRSTATUS/NT_PRPSINFO (threads already carry the parent's tids).
class ParentIdentitySnapshot final : public ProcessSnapshot {
 public:
  ParentIdentitySnapshot(const ProcessSnapshot& inner, pid_t pid, pid_t ppid, int nice);

  const ProcessInfo& process() const override { return info_; }
  size_t thread_count() const override { return inner_.thread_count(); }
  const ThreadSnapshot& thread(size_t i) const override { return inner_.thread(i); }
  size_t mapping_count() const override { return inner_.mapping_count(); }
  const MappingSnapshot& mapping(size_t i) const override { return inner_.mapping(i); }
  std::span<const uint8_t> auxv() const override { return inner_.auxv(); }
  const siginfo_t* siginfo() const override { return inner_.siginfo(); }
  ssize_t ReadMemory(uint64_t addr, void* buf, size_t len) const override {
    return inner_.ReadMemory(addr, buf, len);
  }
  std::span<const uint8_t> xsave_layout() const override { return inner_.xsave_layout(); }
  int QueryPages(uint64_t addr, size_t npages, uint8_t* flags) const override {
    return inner_.QueryPages(addr, npages, flags);
  }

 private:
  const ProcessSnapshot& inner_;
  ProcessInfo info_;
};

// kAuto's rule. Copy-on-write makes the parent's pages private again as it
// writes to them while the child holds the snapshot: at worst every
// anonymous resident page (RssAnon) is copied once. We bet on at most half
// of them being written during a dump, with a floor for small processes:
//
//   fork   when there is no memory limit, or
//          headroom = limit - usage >= max(64 MiB, RssAnon / 2)
//   suspend otherwise (a fork could bring on the OOM kill the dump races).
//
// Unknown values (kUnknownBytes): no limit known → fork; usage unknown with a
// limit → suspend (we cannot tell). Writes a short reason into `reason`
// (always NUL-terminated), e.g. "cgroup headroom 812 MiB >= 64 MiB needed".
inline constexpr uint64_t kUnknownBytes = UINT64_MAX;
inline constexpr uint64_t kForkHeadroomFloor = 64ull << 20;
bool ChooseForkForHeadroom(uint64_t limit, uint64_t usage, uint64_t rss_anon, char* reason,
                           size_t reason_size);

// A cgroup file holding one number ("max" and values >= 2^62 read as no
// limit: kUnknownBytes). kUnknownBytes when unreadable.
uint64_t ReadCgroupBytes(const char* path);
// RssAnon of /proc/self/status in bytes, or kUnknownBytes.
uint64_t ReadSelfRssAnon();

// clone(2) without glibc's fork(): no atfork handlers (they take malloc's
// locks, which a stopped thread may hold), no exit signal (an application's
// SIGCHLD handler or SIG_IGN neither reaps nor sees it; wait with __WALL).
// Returns the child's pid in the parent, 0 in the child, or -errno.
pid_t RawFork();

// First thing in the child: fault signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
// SIGABRT, SIGTRAP, SIGSYS) back to their default action, so a fault kills
// the child instead of running the parent's crash handler, every other
// signal blocked (the parent's handlers must not run here), and SIGKILL if
// the parent's dumping thread goes away; then the child lowers its priority
// to kForkWriterNice and the lowest best-effort I/O priority, so that the
// threads of the service it copies come first on a busy CPU or disk.
// Returns false if the parent is already gone.
inline constexpr int kForkWriterNice = 19;
bool PrepareForkChild(pid_t parent_pid);

// Waits for the child `pid`, calling `progress(context, written, total)`
// about every `interval_ms` (when non-null). The callback is the caller's:
// if it throws, the exception stops here and it is not called again. A child
// whose `report->bytes_written` does not move for `stall_timeout_ms` (0: no
// limit) is killed with SIGKILL and reaped (given up on after
// kReapAfterKillMs: a writer in an uninterruptible wait, say on a hung NFS
// server, may not die at once), and ETIMEDOUT is returned. Returns the wait
// status in `*status`; 0, ETIMEDOUT, or an errno value when the child could
// not be waited for (ECHILD: reaped elsewhere; `report->done` then tells what
// happened).
inline constexpr uint32_t kReapAfterKillMs = 10000;
int WaitForkChild(pid_t pid, const ForkReport* report, uint32_t interval_ms,
                  uint32_t stall_timeout_ms, void (*progress)(void*, uint64_t, uint64_t),
                  void* context, int* status);

}  // namespace cppdiag::dump
