// Async-signal-safe: snapshots this process and writes the core, with the
// other threads stopped or from the fork-mode child (no allocation, no
// locks, no stdio, no exceptions).
#include <fcntl.h>

#include <cstring>

#include "diag/dump/cppdiag_note.h"
#include "diag/dump/internal/self_dump_state.h"
#include "diag/dump/sink.h"

namespace cppdiag::dump::internal {
namespace {

int WriteSnapshot(State* s, const DumpJob& job, SelfDumpResult* res) {
  bool truncated = false;
  if (int err = s->snapshot.Load(&truncated)) {
    res->failed_call = "read /proc/self/smaps";
    return err;
  }
  const SelfDumpRequest& req = *job.request;
  const CaptureResult& capture = *job.capture;
  res->mappings_truncated = truncated;
  s->snapshot.SetThreads(capture.threads, capture.count);
  s->snapshot.SetSiginfo(req.siginfo);
  s->snapshot.SetStackCopy(capture.stack_copy.start, capture.stack_copy.data,
                           capture.stack_copy.size);

  CppdiagInfo info;
  info.unix_time_sec = job.now.tv_sec;
  info.unix_time_nsec = static_cast<uint32_t>(job.now.tv_nsec);
  info.pid = job.pid;
  info.signal = req.siginfo != nullptr ? req.siginfo->si_signo : 0;
  info.dump_type = DumpTypeNumber(job.type);
  info.cgroup_version = static_cast<uint32_t>(s->cgroup_version);
  info.cgroup_usage_bytes = ReadCgroupUsage(s);
  info.cgroup_limit_bytes = s->cgroup_version != 0 ? s->cgroup_limit : kCppdiagUnknown;
  info.threads = static_cast<uint32_t>(capture.count);
  info.threads_not_captured = static_cast<uint32_t>(capture.not_captured + capture.not_listed);
  CopyReason(req.reason, &info);

  CoreWriterOptions options;
  options.type = job.type;
  options.info = &info;
  options.providers = s->providers;
  options.provider_count = CopyNoteProviders(s->providers, kMaxNoteProviders);

  FileSink sink(job.fd, s->sink_buffer, kSinkBufferBytes, s->writeback_bytes);
  ProgressSink progress(&sink, s->report);
  ParentIdentitySnapshot snapshot(s->snapshot, job.pid, job.ppid);
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

}  // namespace

int WriteStopped(State* s, const DumpJob& job, SelfDumpResult* res) {
  // Both optional (refused to a non-dumpable process) and opened here, by
  // the process that writes (the fork-mode child: its own copy), closed
  // after. mem first, as it is what keeps the fork-mode child from copying
  // the pages it reads; without it memory is read with process_vm_readv.
  // Without pagemap every page of a planned range is read.
  s->reserve.GiveOne();
  s->mem_fd.store(OpenProc("/proc/self/mem", O_RDONLY), std::memory_order_release);
  s->reserve.GiveOne();
  s->pagemap_fd.store(OpenProc("/proc/self/pagemap", O_RDONLY), std::memory_order_release);
  ConfigureSnapshot(s);
  int err = WriteSnapshot(s, job, res);
  CloseOwned(&s->pagemap_fd);
  CloseOwned(&s->mem_fd);
  ConfigureSnapshot(s);
  return err;
}

}  // namespace cppdiag::dump::internal
