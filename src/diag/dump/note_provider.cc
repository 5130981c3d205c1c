// Async-signal-safe: a fixed table of atomics, no allocation, no locks.
#include "diag/dump/note_provider.h"

#include <atomic>
#include <cerrno>

namespace cppdiag::dump {
namespace {

// A slot is free when fn is null. Registration claims a slot by CAS on fn,
// then publishes the context; a reader skips a slot whose context is not yet
// published (ready == false).
struct Slot {
  std::atomic<NoteProviderFn> fn{nullptr};
  std::atomic<void*> context{nullptr};
  std::atomic<bool> ready{false};
};

Slot g_slots[kMaxNoteProviders];

}  // namespace

int RegisterNoteProvider(NoteProviderFn fn, void* context) {
  if (fn == nullptr) return EINVAL;
  for (Slot& s : g_slots) {
    if (s.ready.load(std::memory_order_acquire) && s.fn.load() == fn &&
        s.context.load() == context) {
      return EEXIST;
    }
  }
  for (Slot& s : g_slots) {
    NoteProviderFn expected = nullptr;
    if (s.fn.compare_exchange_strong(expected, fn)) {
      s.context.store(context);
      s.ready.store(true, std::memory_order_release);
      return 0;
    }
  }
  return ENOSPC;
}

int UnregisterNoteProvider(NoteProviderFn fn, void* context) {
  for (Slot& s : g_slots) {
    if (s.ready.load(std::memory_order_acquire) && s.fn.load() == fn &&
        s.context.load() == context) {
      s.ready.store(false, std::memory_order_release);
      s.context.store(nullptr);
      s.fn.store(nullptr, std::memory_order_release);
      return 0;
    }
  }
  return ENOENT;
}

size_t CopyNoteProviders(NoteProvider* out, size_t max) {
  size_t n = 0;
  for (Slot& s : g_slots) {
    if (n == max) break;
    if (!s.ready.load(std::memory_order_acquire)) continue;
    NoteProvider p{s.fn.load(), s.context.load()};
    if (p.fn != nullptr) out[n++] = p;
  }
  return n;
}

}  // namespace cppdiag::dump
