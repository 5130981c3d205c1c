// The note-provider hook: other parts of libcppdiag add ELF notes to every
// dump without the writer knowing them (the heap profiler adds its live-heap
// table this way).
//
// A provider is a function called twice per dump, first to measure (its
// output is only counted) and then to write; it must emit the same notes with
// the same sizes both times. The writer holds it to that: in the second call a
// descriptor is cut or zero-padded to the size its note declared, notes that
// no longer fit what the provider measured are dropped, and the room left is
// filled with one padding note (empty name, type 0), so the layout holds. Providers run on the dump
// path, which may be a signal handler while every other thread is stopped: they must be
// async-signal-safe and must not wait for other threads (no locks, no malloc).
//
//   void AddMyTable(void* ctx, cppdiag::dump::NoteOutput* out) {
//     auto* t = static_cast<MyTable*>(ctx);
//     out->Begin("MYLIB", 1, t->size_bytes());
//     out->Append(t->data(), t->size_bytes());
//   }
//   cppdiag::dump::RegisterNoteProvider(&AddMyTable, &table);
#pragma once

#include <cstddef>
#include <cstdint>

namespace cppdiag::dump {

class NoteOutput {
 public:
  virtual ~NoteOutput() = default;
  // Starts a note with owner `name` (NUL-terminated, e.g. "CPPDIAG"), type
  // `type` and a descriptor of `desc_size` bytes, which the following Append
  // calls deliver (in as many pieces as convenient).
  virtual void Begin(const char* name, uint32_t type, size_t desc_size) = 0;
  virtual void Append(const void* data, size_t len) = 0;
};

using NoteProviderFn = void (*)(void* context, NoteOutput* out);

struct NoteProvider {
  NoteProviderFn fn = nullptr;
  void* context = nullptr;
};

inline constexpr size_t kMaxNoteProviders = 16;

// Adds a provider to the process-wide registry that self-dumps use. Returns 0,
// EEXIST if already registered, or ENOSPC past kMaxNoteProviders.
// Async-signal-safe (lock-free), but meant to be called at start.
int RegisterNoteProvider(NoteProviderFn fn, void* context);

// Removes a provider; returns 0 or ENOENT. A dump that has already copied the
// registry may still call it once: keep `context` alive until process exit or
// until no dump can be running.
int UnregisterNoteProvider(NoteProviderFn fn, void* context);

// Copies the registered providers into `out` (at most `max`); returns how many.
// Async-signal-safe.
size_t CopyNoteProviders(NoteProvider* out, size_t max);

}  // namespace cppdiag::dump
