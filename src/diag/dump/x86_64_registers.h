// The x86-64 register formats the dump engine converts between: a signal
// handler's ucontext, /proc/<pid>/task/<tid>/syscall, and what the core's
// NT_PRSTATUS, NT_PRFPREG, NT_X86_XSTATE and NT_X86_XSAVE_LAYOUT notes hold.
// Kept apart from the thread capture so that other snapshots (a ptrace one)
// share it.
//
// Async-signal-safe: everything here (no allocation, no locks, no stdio).
#pragma once

#include <sys/types.h>
#include <ucontext.h>

#include <cstddef>
#include <cstdint>

#include "diag/dump/process_snapshot.h"

namespace cppdiag::dump {

// The size of this CPU's XSAVE area for the features enabled in XCR0
// (CPUID leaf 0xD), rounded up to 64 bytes; 4096 when unknown, at most 64 KiB.
size_t XstateCapacity();

// Fills `t` from a signal handler's ucontext. `xstate`/`xstate_capacity`:
// where to put the XSAVE area (converted to the NT_X86_XSTATE layout, XCR0 in
// bytes 464..471); `fs_base` as the thread's ARCH_GET_FS gave it.
void FillThreadFromContext(const ucontext_t* uc, pid_t tid, uint64_t fs_base, uint8_t* xstate,
                           size_t xstate_capacity, ThreadSnapshot* t);

// The NT_X86_XSAVE_LAYOUT descriptor for this CPU, as the kernel writes it:
// one record {type, size, offset, flags} (4 x uint32) per extended XSAVE
// feature enabled in XCR0, from CPUID leaf 0xD. Returns its size in bytes (0
// when XSAVE is not in use or `capacity` is too small).
size_t BuildXsaveLayout(uint8_t* out, size_t capacity);

// Parses /proc/<pid>/task/<tid>/syscall into `t`'s registers ("running",
// "-1 sp pc", or "nr a1..a6 sp pc" in hex). Returns false if it says nothing.
bool FillThreadFromSyscallFile(const char* text, size_t len, ThreadSnapshot* t);

}  // namespace cppdiag::dump
