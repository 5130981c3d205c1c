// A core of another process, written by the cppdiag tool with ptrace: for
// processes that do not embed libcppdiag (`cppdiag dump collect --ptrace`).
// The same writer and dump types as a self-dump (elf_core_writer.h), through
// a PtraceSnapshot; the file is written in the tool's filesystem, as
// dump_file.h writes every dump: complete or absent, mode 0600.
//
// Snapshot modes:
//   stop  every thread stays stopped for the whole write (gcore's way).
//   fork  the threads are stopped to capture their registers and to make
//         the target run an injected clone syscall (ptrace_fork.h); the
//         target then runs on and the core is written from the frozen
//         copy-on-write child, killed afterwards.
//   auto  fork when it can (the cgroup has room for the copy-on-write
//         copies, see ChooseForkForHeadroom; the injection works), else stop.
//
// The target is always let go: on success, on error, and when `cancel`
// becomes true (the tool's SIGINT handler), which stops the dump with
// ECANCELED and leaves no file.
//
//   PtraceDumpOptions o{.pid = 42, .path = "/tmp/core.42", .type = DumpType::kHeap};
//   auto report = WritePtraceDump(o);
//   if (!report) Fail(report.error().message());   // one line
//
// Not async-signal-safe; for the tool, not for the runtime.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "diag/dump/dump_type.h"
#include "diag/dump/ptrace_attach.h"

namespace cppdiag::dump {

enum class PtraceSnapshotMode { kAuto, kStop, kFork };

struct PtraceDumpOptions {
  pid_t pid = 0;
  // The file; empty: core.<comm>.<pid>.<unix time> in the working directory.
  std::string path;
  DumpType type = DumpType::kHeap;
  bool overwrite = false;
  PtraceSnapshotMode mode = PtraceSnapshotMode::kAuto;
  const std::atomic<bool>* cancel = nullptr;  // polled; true: stop, detach, leave no file
  // Called once the target is captured, before the write (path, mode name).
  std::function<void(const std::string& path, const std::string& mode)> on_start;
  // Called as the core is written (bytes so far, the core's size; 0 = not known yet).
  std::function<void(uint64_t written, uint64_t total)> progress;
  // The cppdiag note's reason; empty: "ptrace request (fork)" or "(stop)".
  std::string reason;
  // Not empty: the threads of `pid` a tracer session of this process (cppdiag
  // monitor --signal/--exit) already holds stopped. The dump neither attaches
  // nor detaches, and uses stop mode (no injected syscall touches the
  // session's threads or options); the session lets them go afterwards.
  std::vector<StoppedThread> adopted;
  bool force_proc_mem = false;  // tests: read memory through /proc/<pid>/mem only
};

struct PtraceDumpReport {
  std::string path;
  std::string mode;         // "stop" or "fork"
  std::string mode_reason;  // why auto chose it, or what made fork fall back
  uint64_t size_bytes = 0;  // the core's size (holes included)
  uint64_t data_bytes = 0;  // bytes stored
  uint32_t threads = 0;
  uint32_t threads_not_captured = 0;
  // How long the target's threads were stopped: attach to detach. With
  // fork, that is the register capture and the injected fork only (the
  // reaping of the child later stops one thread for one wait4).
  double pause_ms = 0;
  double capture_ms = 0;  // attach, registers, (fork,) mappings
  double write_ms = 0;    // the core's write
  double total_ms = 0;
  bool used_proc_mem = false;  // memory was read through /proc/<pid>/mem
  std::string warning;         // something to tell, though the dump is written
};

Result<PtraceDumpReport> WritePtraceDump(const PtraceDumpOptions& options);

}  // namespace cppdiag::dump
