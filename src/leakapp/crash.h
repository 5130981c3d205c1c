// Crashing on purpose, to practise crash dumps (POST /crash?kind=...).
//
// Each kind crashes from its own non-inlined function, so the dump's crashing
// thread names it: CrashWithSegv (a write through a null pointer, SIGSEGV),
// CrashWithAbort (std::abort, SIGABRT), CrashWithOutOfMemory (an allocation
// that cannot succeed; the std::bad_alloc is not caught, so std::terminate
// aborts, SIGABRT).
#pragma once

#include <optional>
#include <string_view>

namespace leakapp {

enum class CrashKind { kSegv, kAbort, kOom };

// "segv", "abort", "oom".
const char* CrashKindName(CrashKind kind);
std::optional<CrashKind> ParseCrashKind(std::string_view name);

[[gnu::noinline]] void CrashWithSegv();
[[gnu::noinline]] void CrashWithAbort();
[[gnu::noinline]] void CrashWithOutOfMemory();

// Logs and crashes the process as `kind` says, on a new detached thread (an
// HTTP handler's thread would have its exceptions caught by the server).
// Returns at once.
void CrashOnNewThread(CrashKind kind);

}  // namespace leakapp
