#include "diag/dump/ptrace_dump.h"

#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <optional>

#include "common/cgroup.h"
#include "common/io.h"
#include "diag/dump/cppdiag_note.h"
#include "diag/dump/dump_file.h"
#include "diag/dump/elf_core_writer.h"
#include "diag/dump/fork_snapshot.h"
#include "diag/dump/internal/dump_name.h"
#include "diag/dump/ptrace_attach.h"
#include "diag/dump/ptrace_fork.h"
#include "diag/dump/ptrace_snapshot.h"
#include "diag/dump/sink.h"

namespace cppdiag::dump {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Forwards to a ProgressSink, reports progress every few MiB and stops the
// write once `cancel` is set.
class ReportingSink : public Sink {
 public:
  ReportingSink(Sink* inner, const ForkReport* report, const PtraceDumpOptions& o)
      : inner_(inner), report_(report), o_(o) {}
  int Write(const void* data, size_t len) override {
    if (int err = Check()) return err;
    return inner_->Write(data, len);
  }
  int Skip(uint64_t len) override {
    if (int err = Check()) return err;
    return inner_->Skip(len);
  }
  uint64_t offset() const override { return inner_->offset(); }
  int Finish(uint64_t size) override { return inner_->Finish(size); }

 private:
  int Check() {
    if (o_.cancel != nullptr && o_.cancel->load()) return ECANCELED;
    uint64_t at = inner_->offset();
    if (o_.progress && at >= next_) {
      o_.progress(at, report_->bytes_total.load());
      next_ = at + (4 << 20);
    }
    return 0;
  }
  Sink* inner_;
  const ForkReport* report_;
  const PtraceDumpOptions& o_;
  uint64_t next_ = 0;
};

std::string Comm(pid_t pid) {
  auto comm = ReadFileToString("/proc/" + std::to_string(pid) + "/comm");
  if (!comm) return "";
  return comm->substr(0, comm->find('\n'));
}

Result<std::string> DefaultPath(pid_t pid) {
  std::string comm = Comm(pid);
  if (comm.empty()) return Error(ESRCH, "", "process " + std::to_string(pid) + " does not exist");
  char out[PATH_MAX];
  int err = ExpandDumpName("core.%e.%p.%t",
                           {.pid = pid, .exe = comm.c_str(), .unix_time = std::time(nullptr)}, out,
                           sizeof out);
  if (err != 0) return Error(err, "", "dump name");
  return std::string(out);
}

// The file being written: created before the target is stopped (a bad path
// costs the target nothing), removed unless published.
class OutputFile {
 public:
  ~OutputFile() {
    if (!published_) DiscardDumpFile(&file_);
    reserve_.CloseAll();
  }
  Status Create(const std::string& path) {
    reserve_.Fill();
    if (int err = OpenDumpDirectory(-1, path.c_str(), &reserve_, &file_)) {
      return Error(err, "open", "the directory of " + path);
    }
    if (int err = CreateDumpFile(&reserve_, &file_)) return Error(err, "create", path);
    return {};
  }
  int fd() const { return file_.fd.load(); }
  Status Publish(bool replace, std::string* path) {
    char buf[PATH_MAX];
    std::snprintf(buf, sizeof buf, "%s", path->c_str());
    const char* failed = "";
    if (int err = PublishDumpFile(&file_, false, replace, buf, sizeof buf, &failed)) {
      if (err == EEXIST) return Error(err, "", *path + " exists (use --overwrite to replace it)");
      return Error(err, failed, *path);
    }
    SyncDumpDirectory(file_);
    published_ = true;
    file_.CloseDescriptors();
    return {};
  }

 private:
  DescriptorReserve reserve_;
  DumpFile file_;
  bool published_ = false;
};

Status WriteCore(const PtraceSnapshot& snapshot, const PtraceDumpOptions& o, int fd,
                 PtraceDumpReport* report) {
  CppdiagInfo info;
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  info.unix_time_sec = now.tv_sec;
  info.unix_time_nsec = static_cast<uint32_t>(now.tv_nsec);
  info.pid = o.pid;
  info.dump_type = DumpTypeNumber(o.type);
  info.threads = static_cast<uint32_t>(snapshot.thread_count());
  info.threads_not_captured = static_cast<uint32_t>(snapshot.threads_not_captured());
  CopyReason(!o.reason.empty()        ? o.reason.c_str()
             : report->mode == "fork" ? "ptrace request (fork)"
                                      : "ptrace request (stop)",
             &info);

  size_t extra = snapshot.thread_count() + 4 * snapshot.mapping_count() + 64;
  auto buffers = CoreWriterBuffersOwner::Allocate(snapshot.mapping_count() + 16, extra, 1 << 20);
  if (!buffers) return buffers.error();
  std::vector<uint8_t> sink_buffer(64 << 10);
  FileSink file(fd, sink_buffer.data(), sink_buffer.size());
  ForkReport counters;
  ProgressSink progress(&file, &counters);
  ReportingSink sink(&progress, &counters, o);
  CoreWriterOptions options{.type = o.type, .info = &info};
  CoreWriteStats stats;
  int err = WriteElfCore(snapshot, options, buffers->get(), &sink, &stats);
  if (err == ECANCELED) return Error(ECANCELED, "", "interrupted: no dump written");
  if (err != 0) {
    const char* step = file.failed_call()[0] != '\0' ? file.failed_call() : stats.failed_step;
    return Error(err, step, "the core of process " + std::to_string(o.pid));
  }
  if (o.progress) o.progress(stats.file_size, stats.file_size);
  report->size_bytes = stats.file_size;
  report->data_bytes = stats.data_bytes;
  report->threads = static_cast<uint32_t>(stats.threads);
  report->threads_not_captured = info.threads_not_captured;
  report->used_proc_mem = snapshot.used_proc_mem();
  return {};
}

// What fork mode needs that can be learnt before the target is stopped: a
// syscall instruction in it, and (auto) whether its cgroup has room for the
// copy-on-write copies.
struct ForkPlan {
  bool fork = false;
  uint64_t syscall_at = 0;
  std::string reason;
};

uint64_t RssAnonBytes(pid_t pid) {
  auto status = ReadFileToString("/proc/" + std::to_string(pid) + "/status");
  if (!status) return kUnknownBytes;
  size_t at = status->find("RssAnon:");
  if (at == std::string::npos) return kUnknownBytes;
  return std::strtoull(status->c_str() + at + 8, nullptr, 10) * 1024;
}

ForkPlan PlanFork(const PtraceDumpOptions& o) {
  ForkPlan plan;
  if (o.mode == PtraceSnapshotMode::kStop) return plan;
  auto at = FindSyscallInstruction(o.pid);
  if (!at) {
    plan.reason = "fork impossible: " + at.error().message();
    return plan;
  }
  plan.syscall_at = *at;
  if (o.mode == PtraceSnapshotMode::kFork) {
    plan.fork = true;
    return plan;
  }
  uint64_t limit = kUnknownBytes, usage = kUnknownBytes;
  auto cg = CgroupReader().ReadMemory(o.pid);
  if (cg) {
    usage = cg->usage_bytes;
    if (cg->limit_bytes) limit = *cg->limit_bytes;
  } else if (cg.error().code() == EXDEV) {
    // A sidecar's mount shows its own cgroup only: the child would be
    // charged to a limit we cannot see, so do not risk the target's OOM kill.
    plan.reason = "the target's memory cgroup is not visible here, its headroom unknown";
    return plan;
  }
  char reason[128];
  plan.fork = ChooseForkForHeadroom(limit, usage, RssAnonBytes(o.pid), reason, sizeof reason);
  plan.reason = reason;
  return plan;
}

// The frozen copy-on-write child, killed (and reaped) on every path.
struct InjectedChild {
  pid_t pid = 0;
  pid_t tid = 0;  // the target thread that forked it, and will reap it
  uint64_t syscall_at = 0;
  ~InjectedChild() {
    if (pid != 0) (void)::kill(pid, SIGKILL);  // the tracee's tracer dies with us: EXITKILL
  }
  Status Kill(pid_t target) {
    Status st = KillInjectedChild(target, tid, pid, syscall_at);
    pid = 0;
    return st;
  }
};

// Makes a thread of the stopped target fork. The thread chosen must be able
// to run: not in a group-stop, not holding a signal for delivery.
Status ForkTarget(PtraceAttachment* attached, uint64_t syscall_at, InjectedChild* child) {
  const auto& threads = attached->threads();
  for (size_t i = 0; i < threads.size(); ++i) {
    if (threads[i].group_stop || threads[i].pending_signal != 0) continue;
    int signal = 0;
    auto forked = InjectFork(threads[i].tid, syscall_at, &signal);
    if (signal != 0) attached->set_pending_signal(i, signal);
    if (!forked) {
      if (signal != 0) continue;  // that thread has a signal to take: try another
      return forked.error();
    }
    child->pid = *forked;
    child->tid = threads[i].tid;
    child->syscall_at = syscall_at;
    return {};
  }
  return Error(EAGAIN, "",
               "no thread of the target can run an injected fork (stopped by job "
               "control, or receiving signals)");
}

}  // namespace

Result<PtraceDumpReport> WritePtraceDump(const PtraceDumpOptions& o) {
  const auto start = Clock::now();
  PtraceDumpReport report;
  if (o.path.empty()) {
    CPPDIAG_ASSIGN_OR_RETURN(report.path, DefaultPath(o.pid));
  } else {
    report.path = o.path;
  }
  // Said now rather than after the write (the final link refuses it anyway).
  struct stat st;
  if (!o.overwrite && ::lstat(report.path.c_str(), &st) == 0) {
    return Error(EEXIST, "", report.path + " exists (use --overwrite to replace it)");
  }
  OutputFile out;
  CPPDIAG_RETURN_IF_ERROR(out.Create(report.path));

  // Everything fork needs that can be known before the target stops.
  ForkPlan plan;
  if (o.adopted.empty()) {
    plan = PlanFork(o);
  } else {
    plan.reason = "stop: the monitor's ptrace session holds the target";
  }
  report.mode_reason = plan.reason;

  const auto attach_start = Clock::now();
  std::optional<PtraceAttachment> attached;
  {
    if (!o.adopted.empty()) {
      attached.emplace(PtraceAttachment::Adopt(o.pid, o.adopted));
    } else {
      auto a = PtraceAttachment::Attach(o.pid, o.cancel);
      if (!a) return a.error();
      attached.emplace(std::move(*a));
    }
  }
  PtraceSnapshot snapshot;
  if (o.force_proc_mem) snapshot.set_memory_access(PtraceSnapshot::MemoryAccess::kProcMem);
  CPPDIAG_RETURN_IF_ERROR(snapshot.CaptureThreads(*attached));

  InjectedChild child;
  if (plan.fork) {
    auto forked = ForkTarget(&*attached, plan.syscall_at, &child);
    if (!forked) {
      if (o.mode == PtraceSnapshotMode::kFork) return forked.error();
      report.mode_reason = "fork failed (" + forked.error().message() + ")";
    } else {
      attached->Detach();  // the target runs on from here
      report.pause_ms = MsSince(attach_start);
    }
  }
  report.mode = child.pid != 0 ? "fork" : "stop";
  // The child's pages are shared copy-on-write with the target. A read
  // through process_vm_readv pins them (FOLL_PIN), and the kernel (since
  // 5.19) unshares a shared anonymous page before a read-only pin: every
  // page read would be copied into the child, as much memory again as the
  // target's. /proc/<pid>/mem reads without pinning, so nothing is copied.
  if (child.pid != 0 && !o.force_proc_mem)
    snapshot.set_memory_access(PtraceSnapshot::MemoryAccess::kProcMemFirst);
  CPPDIAG_RETURN_IF_ERROR(snapshot.LoadProcess(o.pid));
  CPPDIAG_RETURN_IF_ERROR(snapshot.LoadMemory(child.pid != 0 ? child.pid : o.pid));
  report.capture_ms = MsSince(attach_start);

  if (o.on_start) o.on_start(report.path, report.mode);
  const auto write_start = Clock::now();
  Status written = WriteCore(snapshot, o, out.fd(), &report);
  report.write_ms = MsSince(write_start);
  if (child.pid == 0) {
    attached->Detach();
    report.pause_ms = MsSince(attach_start);
  } else if (Status reaped = child.Kill(o.pid); !reaped) {
    report.warning = "the dump's child " + std::to_string(child.pid) +
                     " may be left as a zombie of the target: " + reaped.error().message();
  }
  if (!written) return written.error();
  CPPDIAG_RETURN_IF_ERROR(out.Publish(o.overwrite, &report.path));
  report.total_ms = MsSince(start);
  return report;
}

}  // namespace cppdiag::dump
