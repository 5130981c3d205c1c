// The PT_NOTE segment of a core: the kernel's notes (NT_PRSTATUS per thread,
// NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FILE, the FP and XSAVE registers, the
// XSAVE layout) in the kernel's order, then cppdiag's note and the
// providers'. Private to diag/dump (the ELF core writer's).
//
// Async-signal-safe: no allocation, no locks, no stdio, no exceptions.
#pragma once

#include <elf.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "diag/dump/elf_core_writer.h"
#include "diag/dump/note_provider.h"
#include "diag/dump/sink.h"

namespace cppdiag::dump::internal {

inline uint64_t Align4(uint64_t v) { return (v + 3) & ~uint64_t{3}; }

// Emits notes into a sink, or only counts them (sink == null). A limit keeps
// a provider to the size it measured: a note that does not fit is dropped and
// short descriptors are zero-padded.
class NoteWriter : public NoteOutput {
 public:
  explicit NoteWriter(Sink* sink) : sink_(sink) {}

  void Begin(const char* name, uint32_t type, size_t desc_size) override {
    End();
    size_t namesz = strlen(name) + 1;
    uint64_t total = sizeof(Elf64_Nhdr) + Align4(namesz) + Align4(desc_size);
    // A note that does not fit is dropped; one that would leave less room
    // than a padding note needs is dropped too.
    uint64_t left = limit_ - bytes_;
    if (total > left ||
        (left - total != 0 && left - total < sizeof(Elf64_Nhdr) && limit_ != UINT64_MAX)) {
      dropping_ = true;
      return;
    }
    Elf64_Nhdr h{static_cast<Elf64_Word>(namesz), static_cast<Elf64_Word>(desc_size), type};
    Emit(&h, sizeof h);
    Emit(name, namesz);
    Pad(Align4(namesz) - namesz);
    desc_left_ = desc_size;
    desc_pad_ = Align4(desc_size) - desc_size;
    in_note_ = true;
  }

  void Append(const void* data, size_t len) override {
    if (dropping_ || !in_note_) return;
    size_t n = std::min(len, desc_left_);
    Emit(data, n);
    desc_left_ -= n;
  }

  // Finishes the open note (pads a short descriptor).
  void End() {
    if (in_note_) {
      Pad(desc_left_ + desc_pad_);
      desc_left_ = desc_pad_ = 0;
      in_note_ = false;
    }
    dropping_ = false;
  }

  // Whole note in one call.
  void Note(const char* name, uint32_t type, const void* desc, size_t size) {
    Begin(name, type, size);
    Append(desc, size);
    End();
  }

  // Holds what follows to `bytes` more bytes (the provider's measured size).
  void LimitTo(uint64_t bytes) { limit_ = bytes_ + bytes; }
  // Ends a limited stretch: fills what is left up to the limit with one
  // padding note (no name, type 0, zero descriptor) and lifts the limit.
  void PadToLimit() {
    End();
    if (limit_ != UINT64_MAX && bytes_ < limit_) {
      uint64_t left = limit_ - bytes_;  // >= 12 and a multiple of 4, as Begin ensures
      Elf64_Nhdr h{0, static_cast<Elf64_Word>(left - sizeof h), 0};
      Emit(&h, sizeof h);
      Pad(left - sizeof h);
    }
    limit_ = UINT64_MAX;
  }

  uint64_t bytes() const { return bytes_; }
  int error() const { return error_; }

 private:
  void Emit(const void* data, size_t len) {
    if (len == 0) return;
    if (sink_ != nullptr && error_ == 0) error_ = sink_->Write(data, len);
    bytes_ += len;
  }
  void Pad(uint64_t len) {
    static const uint8_t kZeros[64] = {};
    while (len > 0) {
      size_t n = std::min<uint64_t>(len, sizeof kZeros);
      Emit(kZeros, n);
      len -= n;
    }
  }

  Sink* sink_;
  uint64_t bytes_ = 0;
  uint64_t limit_ = UINT64_MAX;
  size_t desc_left_ = 0;
  size_t desc_pad_ = 0;
  bool in_note_ = false;
  bool dropping_ = false;
  int error_ = 0;
};

// All notes, in the kernel's order, then ours. `provider_sizes` is filled
// when measuring (a null sink) and enforced when writing.
void WriteNotes(const ProcessSnapshot& s, const CoreWriterOptions& o, NoteWriter* w,
                uint64_t* provider_sizes, bool measuring);

}  // namespace cppdiag::dump::internal
