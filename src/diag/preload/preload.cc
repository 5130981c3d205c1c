// libcppdiag_preload.so: LD_PRELOAD it into any dynamically linked program
// and that program gets what linking libcppdiag gives: the allocation hooks
// and heap profiler, the diagnostic socket, the crash handler and the pre-OOM
// watchdog, configured by the same CPPDIAG_* variables.
//
//   LD_PRELOAD=/usr/lib/cppdiag/libcppdiag_preload.so CPPDIAG_ENABLE_DUMP_ON_CRASH=1 ./server
//
// malloc and the operator new/delete family are exported from this library
// (allocation_hooks.cc), so the dynamic linker binds every object's calls to
// them. The hooks call glibc's __libc_* functions directly (no dlsym), so
// allocations made before this constructor runs (by the loader, libc or
// other constructors) are served; sampling, and exact accounting when
// CPPDIAG_HEAP_HARD_LIMIT asks for it, start with the runtime.
#include <cstdio>

#include "diag/runtime.h"

namespace {

__attribute__((constructor)) void CppdiagPreloadStart() {
  auto started = cppdiag::StartRuntime();
  if (!started.ok()) {
    std::fprintf(stderr, "cppdiag: not started: %s\n", started.error().message().c_str());
  }
}

}  // namespace
