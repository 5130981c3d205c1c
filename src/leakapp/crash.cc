#include "leakapp/crash.h"

#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <thread>

namespace leakapp {

const char* CrashKindName(CrashKind kind) {
  switch (kind) {
    case CrashKind::kSegv:
      return "segv";
    case CrashKind::kAbort:
      return "abort";
    case CrashKind::kOom:
      return "oom";
  }
  return "unknown";
}

std::optional<CrashKind> ParseCrashKind(std::string_view name) {
  for (CrashKind k : {CrashKind::kSegv, CrashKind::kAbort, CrashKind::kOom}) {
    if (name == CrashKindName(k)) return k;
  }
  return std::nullopt;
}

void CrashWithSegv() {
  // A volatile store through a pointer read from a volatile object: the
  // compiler can neither see that it is null (and emit a trap, SIGILL) nor
  // drop the store.
  volatile int* volatile target = nullptr;
  *target = 42;  // NOLINT(clang-analyzer-core.NullDereference): the crash asked for
}

void CrashWithAbort() { std::abort(); }

void CrashWithOutOfMemory() {
  // A real allocation failure (no address space is that large), not a bare
  // throw; the volatile size keeps the compiler from folding it.
  volatile size_t huge = SIZE_MAX / 4;
  void* volatile p = ::operator new(huge);  // throws std::bad_alloc, caught by no one
  ::operator delete(p);
  throw std::bad_alloc();  // in case that allocation ever succeeded
}

void CrashOnNewThread(CrashKind kind) {
  spdlog::warn("Crashing on purpose: kind={}", CrashKindName(kind));
  spdlog::default_logger()->flush();
  std::thread([kind] {
    switch (kind) {
      case CrashKind::kSegv:
        CrashWithSegv();
        break;
      case CrashKind::kAbort:
        CrashWithAbort();
        break;
      case CrashKind::kOom:
        CrashWithOutOfMemory();
        break;
    }
  }).detach();
}

}  // namespace leakapp
