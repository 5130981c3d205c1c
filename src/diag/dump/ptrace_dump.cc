#include "diag/dump/ptrace_dump.h"

#include <limits.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <optional>

#include "common/io.h"
#include "diag/dump/cppdiag_note.h"
#include "diag/dump/dump_file.h"
#include "diag/dump/elf_core_writer.h"
#include "diag/dump/fork_snapshot.h"
#include "diag/dump/internal/dump_name.h"
#include "diag/dump/ptrace_attach.h"
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
      return Error(err, failed, *path + (err == EEXIST ? " (use --overwrite to replace it)" : ""));
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
  CopyReason(report->mode == "fork" ? "ptrace request (fork)" : "ptrace request (stop)", &info);

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

}  // namespace

Result<PtraceDumpReport> WritePtraceDump(const PtraceDumpOptions& o) {
  const auto start = Clock::now();
  PtraceDumpReport report;
  if (o.path.empty()) {
    CPPDIAG_ASSIGN_OR_RETURN(report.path, DefaultPath(o.pid));
  } else {
    report.path = o.path;
  }
  OutputFile out;
  CPPDIAG_RETURN_IF_ERROR(out.Create(report.path));

  if (o.mode == PtraceSnapshotMode::kFork) {
    return Error(ENOTSUP, "", "--snapshot fork is not available yet; use --snapshot stop");
  }
  report.mode = "stop";
  if (o.mode == PtraceSnapshotMode::kAuto) report.mode_reason = "fork mode not built yet";

  const auto attach_start = Clock::now();
  std::optional<PtraceAttachment> attached;
  {
    auto a = PtraceAttachment::Attach(o.pid, o.cancel);
    if (!a) return a.error();
    attached.emplace(std::move(*a));
  }
  PtraceSnapshot snapshot;
  if (o.force_proc_mem) snapshot.set_memory_access(PtraceSnapshot::MemoryAccess::kProcMem);
  CPPDIAG_RETURN_IF_ERROR(snapshot.CaptureThreads(*attached));
  CPPDIAG_RETURN_IF_ERROR(snapshot.LoadProcess(o.pid));
  CPPDIAG_RETURN_IF_ERROR(snapshot.LoadMemory(o.pid));
  report.capture_ms = MsSince(attach_start);

  if (o.on_start) o.on_start(report.path, report.mode);
  const auto write_start = Clock::now();
  Status written = WriteCore(snapshot, o, out.fd(), &report);
  report.write_ms = MsSince(write_start);
  attached->Detach();
  report.pause_ms = MsSince(attach_start);
  if (!written) return written.error();
  CPPDIAG_RETURN_IF_ERROR(out.Publish(o.overwrite, &report.path));
  report.total_ms = MsSince(start);
  return report;
}

}  // namespace cppdiag::dump
