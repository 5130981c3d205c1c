// Captures the registers of every thread of this process without ptrace: the
// dumping thread sends each other thread (tgkill) a dedicated real-time
// signal; the handler copies the thread's ucontext (general registers, FXSAVE
// area, the XSAVE area found through the FP_XSTATE_MAGIC1 software-reserved
// bytes, fs_base) into a preallocated slot, says it is ready (atomic counter
// + futex) and waits until released, so memory stays still while the dump is
// written. A thread that does not answer in time (it blocks the signal, or is
// stuck in the kernel) is recorded from /proc/self/task/<tid>/syscall (stack
// pointer, instruction pointer, syscall arguments) and counted.
//
// Internal to the dump engine (self_dump.cc drives it).
//
// InstallThreadCapture runs in normal context at start. Everything else is
// async-signal-safe: no allocation, no locks, no stdio.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <ucontext.h>

#include <cstddef>
#include <cstdint>

#include "common/status.h"
#include "diag/dump/process_snapshot.h"

namespace cppdiag::dump {

// Reserves slots for `max_threads` threads (mmap + MAP_POPULATE, excluded
// from dumps) and installs the handler for `signal`. Fails if `signal` already
// has a handler that is not ours. Calling it again keeps the slots.
Status InstallThreadCapture(int signal, size_t max_threads);

struct CaptureOptions {
  // The calling thread's context when it is in a signal handler (a crash);
  // null: the calling thread captures itself by sending itself the signal.
  const ucontext_t* own_context = nullptr;
  int own_signal = 0;          // the signal being handled, for NT_PRSTATUS pr_cursig
  int task_dir_fd = -1;        // an open /proc/self/task
  uint32_t timeout_ms = 1000;  // for all threads together
  // When the calling thread captures itself (no own_context), the frames
  // below this address (callees of the caller, like the capture itself) are
  // overwritten by the time memory is read. Their bytes, from the captured SP
  // minus the red zone up to here, are kept (CaptureResult::stack_copy) so the
  // dump shows the stack as it was. Pass __builtin_frame_address(0) of a
  // function that stays active until the dump is written.
  uint64_t keep_stack_top = 0;
};

// Bytes of the calling thread's stack as they were when it was captured.
struct StackCopy {
  uint64_t start = 0;
  const uint8_t* data = nullptr;
  size_t size = 0;
};

struct CaptureResult {
  // Captured threads, the calling thread first. Valid until ReleaseThreads.
  const ThreadSnapshot* const* threads = nullptr;
  size_t count = 0;
  size_t not_captured = 0;  // recorded from /proc only (or nothing)
  size_t not_listed = 0;    // threads beyond the slots (not in the dump)
  StackCopy stack_copy;     // see CaptureOptions::keep_stack_top
};

// Stops every other thread in its signal handler and records all threads.
// Returns 0 or an errno value (EBUSY: a capture is already running). Always
// call ReleaseThreads afterwards, also after an error.
int CaptureAllThreads(const CaptureOptions& options, CaptureResult* result);

// Lets the stopped threads go on.
void ReleaseThreads();

}  // namespace cppdiag::dump
