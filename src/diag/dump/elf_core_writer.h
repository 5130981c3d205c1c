// The ELF core writer: turns a ProcessSnapshot into a core file that gdb and
// eu-stack read like one the kernel wrote, into a Sink.
//
// Layout (after the kernel's binfmt_elf):
//   ELF header (ET_CORE, EM_X86_64)
//   program headers: one PT_NOTE, then a PT_LOAD per planned segment
//     (every mapping has one; what the dump type leaves out has p_filesz 0)
//   [one section header holding the real e_phnum when there are >= PN_XNUM]
//   PT_NOTE data, in the kernel's order:
//     thread 0 (the crashing/dumping thread): NT_PRSTATUS, NT_PRPSINFO,
//       NT_SIGINFO (when a signal caused the dump), NT_AUXV, NT_FILE,
//       NT_PRFPREG, NT_X86_XSTATE
//     every other thread: NT_PRSTATUS, NT_PRFPREG, NT_X86_XSTATE (each
//       when known); every NT_PRSTATUS carries the fatal signal, if any
//     NT_X86_XSAVE_LAYOUT (when the snapshot knows it), as kernels >= 6.10
//     then the cppdiag note (cppdiag_note.h), then the note providers'
//   page-aligned PT_LOAD data. All-zero pages (and never-touched pages of
//   private anonymous mappings) are skipped, leaving holes; unreadable pages
//   are left as holes too and counted. The sink is finished at the full size.
//
// WriteElfCore is async-signal-safe: it works only in the caller's buffers
// (CoreWriterBuffers) and reads through the snapshot. Allocate the buffers up
// front with CoreWriterBuffersOwner (not async-signal-safe).
//
//   auto buffers = CoreWriterBuffersOwner::Allocate(4096, 4096, 1 << 20);
//   MemorySink sink;
//   CoreWriteStats stats;
//   int err = WriteElfCore(snapshot, {.type = DumpType::kFull}, buffers->get(), &sink, &stats);
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/async_safe.h"
#include "common/status.h"
#include "diag/dump/cppdiag_note.h"
#include "diag/dump/dump_type.h"
#include "diag/dump/internal/memory_plan.h"
#include "diag/dump/note_provider.h"
#include "diag/dump/process_snapshot.h"
#include "diag/dump/sink.h"

namespace cppdiag::dump {

struct CoreWriterOptions {
  DumpType type = DumpType::kFull;
  const CppdiagInfo* info = nullptr;  // the cppdiag note; null: none
  const NoteProvider* providers = nullptr;
  size_t provider_count = 0;
};

// The writer's working memory, all provided by the caller.
struct CoreWriterBuffers {
  PlanBuffers plan;
  uint8_t* io = nullptr;  // memory is read through this; at least 64 KiB, page multiple
  size_t io_size = 0;
};

struct CoreWriteStats {
  uint64_t file_size = 0;         // bytes of the core (including holes)
  uint64_t data_bytes = 0;        // bytes stored
  uint64_t zero_bytes = 0;        // planned bytes left as holes because they are zero
  uint64_t unreadable_bytes = 0;  // planned bytes that could not be read (holes)
  uint64_t notes_bytes = 0;
  size_t segments = 0;  // PT_LOAD headers
  size_t threads = 0;
  bool ranges_truncated = false;  // partial inclusions did not all fit the buffers
  const char* failed_step = "";   // on failure: "plan", "write", "finish"
};

// Writes the core. Returns 0 or an errno value (from the sink, or ENOBUFS
// when the buffers are too small for the plan).
int WriteElfCore(const ProcessSnapshot& snapshot, const CoreWriterOptions& options,
                 const CoreWriterBuffers& buffers, Sink* sink, CoreWriteStats* stats);

// Owns CoreWriterBuffers in one mmap (populated, so the memory is charged up
// front). Not async-signal-safe; the buffers it hands out are.
class CoreWriterBuffersOwner {
 public:
  // Room for `max_mappings` mappings and `max_extra_ranges` partial
  // inclusions (stacks, module headers, module list), and an I/O buffer.
  static Result<CoreWriterBuffersOwner> Allocate(size_t max_mappings, size_t max_extra_ranges,
                                                 size_t io_size);
  CoreWriterBuffersOwner(CoreWriterBuffersOwner&&) noexcept = default;
  CoreWriterBuffersOwner& operator=(CoreWriterBuffersOwner&&) noexcept = default;

  const CoreWriterBuffers& get() const { return buffers_; }

 private:
  CoreWriterBuffersOwner() = default;
  ScopedMmap mapping_;  // the buffers_ point into it
  CoreWriterBuffers buffers_;
};

}  // namespace cppdiag::dump
