// Interposes glibc's allocation functions. Everything here runs inside
// malloc: no allocation, no locks, no stdio.
#include "diag/heap/allocation_hooks.h"

#include <errno.h>
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CPPDIAG_INTERPOSE_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CPPDIAG_INTERPOSE_MALLOC 0
#endif
#endif
#ifndef CPPDIAG_INTERPOSE_MALLOC
#define CPPDIAG_INTERPOSE_MALLOC 1
#endif

namespace cppdiag::heap {
namespace {

std::atomic<int64_t> g_in_use{0};
std::atomic<uint64_t> g_limit{0};
std::atomic<uint64_t> g_failures{0};

// Bytes this thread allocated (positive) or freed (negative) since its last
// fold into g_in_use. initial-exec: no allocation on first use, even when
// preloaded.
constexpr int64_t kFoldBytes = 256 * 1024;
__attribute__((tls_model("initial-exec"))) thread_local int64_t t_pending = 0;

inline void Account(int64_t delta) {
  t_pending += delta;
  if (t_pending > kFoldBytes || t_pending < -kFoldBytes) {
    g_in_use.fetch_add(t_pending, std::memory_order_relaxed);
    t_pending = 0;
  }
}

// False when allocating `size` more bytes would cross the hard limit.
inline bool Admit(size_t size) {
  uint64_t limit = g_limit.load(std::memory_order_relaxed);
  if (limit == 0) return true;
  int64_t in_use = g_in_use.load(std::memory_order_relaxed) + t_pending;
  if (in_use < 0) in_use = 0;
  if (static_cast<uint64_t>(in_use) + size <= limit) return true;
  g_failures.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace

bool HooksActive() { return CPPDIAG_INTERPOSE_MALLOC != 0; }
void SetHeapHardLimit(uint64_t bytes) { g_limit.store(bytes, std::memory_order_relaxed); }
uint64_t HeapHardLimit() { return g_limit.load(std::memory_order_relaxed); }
uint64_t HeapInUseBytes() {
  int64_t v = g_in_use.load(std::memory_order_relaxed);
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}
uint64_t HeapLimitFailures() { return g_failures.load(std::memory_order_relaxed); }

}  // namespace cppdiag::heap

#if CPPDIAG_INTERPOSE_MALLOC

extern "C" {
void* __libc_malloc(size_t);
void __libc_free(void*);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void* __libc_valloc(size_t);
void* __libc_pvalloc(size_t);
}

namespace {

using cppdiag::heap::Account;
using cppdiag::heap::Admit;

inline void* Track(void* p) {
  if (p != nullptr) Account(static_cast<int64_t>(malloc_usable_size(p)));
  return p;
}

inline void* Refuse() {
  errno = ENOMEM;
  return nullptr;
}

}  // namespace

extern "C" {

void* malloc(size_t size) {
  if (!Admit(size)) return Refuse();
  return Track(__libc_malloc(size));
}

void free(void* p) {
  if (p == nullptr) return;
  Account(-static_cast<int64_t>(malloc_usable_size(p)));
  __libc_free(p);
}

void* calloc(size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) return Refuse();
  if (!Admit(total)) return Refuse();
  return Track(__libc_calloc(n, size));
}

void* realloc(void* p, size_t size) {
  if (p == nullptr) return malloc(size);
  if (size == 0) {
    free(p);
    return nullptr;
  }
  size_t old = malloc_usable_size(p);
  if (size > old && !Admit(size - old)) return Refuse();  // p stays valid, as realloc promises
  void* q = __libc_realloc(p, size);
  if (q != nullptr)
    Account(static_cast<int64_t>(malloc_usable_size(q)) - static_cast<int64_t>(old));
  return q;
}

void* memalign(size_t alignment, size_t size) {
  if (!Admit(size)) return Refuse();
  return Track(__libc_memalign(alignment, size));
}

void* aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }

int posix_memalign(void** out, size_t alignment, size_t size) {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
  if (!Admit(size)) return ENOMEM;
  void* p = Track(__libc_memalign(alignment, size));
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

void* valloc(size_t size) {
  if (!Admit(size)) return Refuse();
  return Track(__libc_valloc(size));
}

void* pvalloc(size_t size) {
  if (!Admit(size)) return Refuse();
  return Track(__libc_pvalloc(size));
}

}  // extern "C"

#endif  // CPPDIAG_INTERPOSE_MALLOC
