// Async-signal-safe: the self-dump's fork mode (no allocation, no locks, no
// stdio, no exceptions). With every thread captured, a clone of the process
// writes the dump from its copy-on-write view of the memory while the
// parent's threads run on (fork_snapshot.h).
#include <sys/wait.h>
#include <unistd.h>

#include "common/async_safe.h"
#include "diag/dump/internal/self_dump_state.h"

namespace cppdiag::dump::internal {
namespace {

// The fork-mode child: writes the core from its copy of the memory, with the
// parent's identity, reports through the shared page and exits. Its
// /proc/self files are its own (the same memory, as of the clone).
[[noreturn]] void ForkChildMain(State* s, const DumpJob& job) {
  if (!PrepareForkChild(job.pid)) ::_exit(3);
  ForkReport* r = s->report;
  SelfDumpResult local;
  int err = OpenProcFiles(s);
  if (err != 0) {
    local.failed_call = "open /proc/self";
  } else {
    err = WriteStopped(s, job, &local);
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

}  // namespace

void AppendReason(SelfDumpResult* res, size_t* n, const char* text) {
  while (*text != '\0' && *n + 1 < sizeof res->mode_reason) res->mode_reason[(*n)++] = *text++;
  res->mode_reason[*n] = '\0';
}

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

pid_t ForkWriter(State* s, const DumpJob& job) {
  pid_t child = RawFork();
  if (child == 0) ForkChildMain(s, job);
  return child;
}

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

}  // namespace cppdiag::dump::internal
