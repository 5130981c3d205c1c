// The CPU sampler's SIGPROF handler and the frame-pointer walk it runs.
// Everything here but InstallSigprofHandler is async-signal-safe: no
// allocation, no locks, no stdio, no call into glibc but pthread_self() (a
// register read) and clock_gettime (vDSO).
#pragma once

#include <csignal>
#include <cstddef>
#include <cstdint>

#include "common/status.h"
#include "diag/cpu/internal/sample_ring.h"

namespace cppdiag::cpu::internal {

// The signal every sampling timer sends.
inline constexpr int kSampleSignal = SIGPROF;

// Installs the handler for SIGPROF once (normal context), and keeps it for
// the process's life: a signal still queued after a trace stops must find a
// handler, not SIGPROF's default action (terminate). EBUSY when the program
// has a SIGPROF handler of its own (another profiler: gperftools, setitimer).
Status InstallSigprofHandler();

// The slots the handler may write: a timer's sigev_value that points
// anywhere else is ignored. Set once, before the first timer is armed.
void SetSlotRange(ThreadSlot* first, size_t count);

// Writes up to `max` pcs of the context `ucontext` (a ucontext_t* as a
// signal handler gets it): the interrupted pc, then the return addresses of
// the frame-pointer chain. Frames are read only in [sp, top of the
// calling thread's stack) when that range is at most 64 MiB (it is live
// stack, so mapped); beyond it each page is probed with a syscall before it
// is read, at most 16 a sample. Returns how many were written (>= 1).
size_t WalkStack(const void* ucontext, uint64_t* pcs, size_t max);

// Records one sample of the calling thread into `slot` (dropped when the
// slot is not this thread's), standing for `weight` timer periods.
void RecordSample(ThreadSlot* slot, const void* ucontext, uint32_t weight);

}  // namespace cppdiag::cpu::internal
