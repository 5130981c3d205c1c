// Async-signal-safe (WriteElfCore and everything it calls): no allocation, no
// locks, no stdio, no exceptions. CoreWriterBuffersOwner::Allocate is not.
#include "diag/dump/elf_core_writer.h"

#include <elf.h>
#include <sys/procfs.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "diag/dump/internal/note_writer.h"

namespace cppdiag::dump {
namespace {

using internal::NoteWriter;
using internal::WriteNotes;

constexpr size_t kMaxQueryPages = 512;

uint64_t PageUp(uint64_t v) { return (v + kPageSize - 1) & ~(kPageSize - 1); }

bool IsZero(const uint8_t* p, size_t len) {
  // Word-wise with an early exit every 64 bytes: dumps are mostly non-zero data.
  const uint8_t* end = p + len;
  for (; p + 64 <= end; p += 64) {
    uint64_t w[8];
    std::memcpy(w, p, sizeof w);
    if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0) return false;
  }
  for (; p < end; ++p) {
    if (*p != 0) return false;
  }
  return true;
}

struct Headers {
  uint64_t phnum = 0;
  bool extended = false;  // phnum >= PN_XNUM: real count in section header 0
  uint64_t notes_offset = 0;
  uint64_t notes_size = 0;
  uint64_t data_offset = 0;
};

int WriteHeaders(const MemoryPlan& plan, const Headers& h, Sink* sink) {
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
  eh.e_type = ET_CORE;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = h.extended ? PN_XNUM : static_cast<Elf64_Half>(h.phnum);
  if (h.extended) {
    eh.e_shoff = sizeof(Elf64_Ehdr) + h.phnum * sizeof(Elf64_Phdr);
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = 1;
  }
  if (int err = sink->Write(&eh, sizeof eh)) return err;

  Elf64_Phdr note{};
  note.p_type = PT_NOTE;
  note.p_offset = h.notes_offset;
  note.p_filesz = h.notes_size;
  note.p_align = 4;
  if (int err = sink->Write(&note, sizeof note)) return err;
  uint64_t offset = h.data_offset;
  for (size_t i = 0; i < plan.segment_count; ++i) {
    const PlannedSegment& seg = plan.segments[i];
    Elf64_Phdr ph{};
    ph.p_type = PT_LOAD;
    ph.p_flags = seg.flags;
    ph.p_offset = offset;
    ph.p_vaddr = seg.start;
    ph.p_memsz = seg.end - seg.start;
    ph.p_filesz = seg.has_data ? ph.p_memsz : 0;
    ph.p_align = kPageSize;
    offset += ph.p_filesz;
    if (int err = sink->Write(&ph, sizeof ph)) return err;
  }
  if (h.extended) {
    Elf64_Shdr sh{};
    sh.sh_info = static_cast<Elf64_Word>(h.phnum);
    if (int err = sink->Write(&sh, sizeof sh)) return err;
  }
  return 0;
}

class DataWriter {
 public:
  DataWriter(const ProcessSnapshot& s, const MemoryPlan& plan, const CoreWriterBuffers& b,
             Sink* sink, CoreWriteStats* stats)
      : s_(s),
        plan_(plan),
        io_(b.io),
        io_size_(b.io_size & ~(kPageSize - 1)),
        sink_(sink),
        stats_(stats) {}

  int Segment(const PlannedSegment& seg) {
    for (uint64_t addr = seg.start; addr < seg.end;) {
      size_t len = static_cast<size_t>(std::min<uint64_t>(io_size_, seg.end - addr));
      int err = seg.exact ? ExactChunk(addr, len) : Chunk(seg, addr, len);
      if (err != 0) return err;
      addr += len;
    }
    return 0;
  }

 private:
  // Reads [addr, addr+len) into io_ (holes zeroed), then stores it.
  int Chunk(const PlannedSegment& seg, uint64_t addr, size_t len) {
    size_t pages = len / kPageSize;
    uint8_t flags[kMaxQueryPages];
    bool known = seg.anonymous && pages <= kMaxQueryPages && s_.QueryPages(addr, pages, flags) == 0;
    size_t p = 0;
    while (p < pages) {
      if (known && !(flags[p] & (kPagePresent | kPageSwapped))) {
        // Never touched: reads as zero, nothing to read.
        size_t q = p;
        while (q < pages && !(flags[q] & (kPagePresent | kPageSwapped))) ++q;
        std::memset(io_ + p * kPageSize, 0, (q - p) * kPageSize);
        p = q;
        continue;
      }
      size_t q = p + 1;
      if (known) {
        while (q < pages && (flags[q] & (kPagePresent | kPageSwapped))) ++q;
      } else {
        q = pages;
      }
      Read(addr + p * kPageSize, io_ + p * kPageSize, (q - p) * kPageSize);
      p = q;
    }
    return Store(len);
  }

  // Reads a run, zero-filling (and counting) what cannot be read.
  void Read(uint64_t addr, uint8_t* out, size_t len) {
    size_t done = 0;
    while (done < len) {
      ssize_t n = s_.ReadMemory(addr + done, out + done, len - done);
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      // Unreadable page: leave a hole and go on with the next page.
      size_t skip = static_cast<size_t>(PageUp(addr + done + 1) - (addr + done));
      skip = std::min(skip, len - done);
      std::memset(out + done, 0, skip);
      stats_->unreadable_bytes += skip;
      done += skip;
    }
  }

  // Only the bytes of the plan's exact ranges, zeros elsewhere.
  int ExactChunk(uint64_t addr, size_t len) {
    std::memset(io_, 0, len);
    uint64_t end = addr + len;
    for (size_t i = 0; i < plan_.range_count; ++i) {
      const ByteRange& r = plan_.ranges[i];
      if (r.start >= end) break;  // sorted by start
      if (!r.exact || r.end <= addr) continue;
      uint64_t a = std::max(r.start, addr), b = std::min(r.end, end);
      ssize_t n = s_.ReadMemory(a, io_ + (a - addr), b - a);
      uint64_t got = n > 0 ? static_cast<uint64_t>(n) : 0;
      if (got < b - a) {
        std::memset(io_ + (a - addr) + got, 0, b - a - got);
        stats_->unreadable_bytes += b - a - got;
      }
    }
    return Store(len);
  }

  // Writes io_[0, len): non-zero pages as data, zero pages as holes.
  int Store(size_t len) {
    size_t p = 0;
    while (p < len) {
      size_t page = std::min<size_t>(kPageSize, len - p);
      bool zero = IsZero(io_ + p, page);
      size_t q = p + page;
      while (q < len) {
        size_t next = std::min<size_t>(kPageSize, len - q);
        if (IsZero(io_ + q, next) != zero) break;
        q += next;
      }
      int err = zero ? sink_->Skip(q - p) : sink_->Write(io_ + p, q - p);
      if (err != 0) return err;
      (zero ? stats_->zero_bytes : stats_->data_bytes) += q - p;
      p = q;
    }
    return 0;
  }

  const ProcessSnapshot& s_;
  const MemoryPlan& plan_;
  uint8_t* io_;
  size_t io_size_;
  Sink* sink_;
  CoreWriteStats* stats_;
};

}  // namespace

int WriteElfCore(const ProcessSnapshot& snapshot, const CoreWriterOptions& options,
                 const CoreWriterBuffers& buffers, Sink* sink, CoreWriteStats* stats) {
  CoreWriteStats local;
  if (stats == nullptr) stats = &local;
  *stats = CoreWriteStats{};
  stats->threads = snapshot.thread_count();
  if (buffers.io == nullptr || buffers.io_size < kPageSize) {
    stats->failed_step = "plan";
    return EINVAL;
  }

  MemoryPlan plan;
  if (int err = PlanMemory(snapshot, options.type, buffers.plan, &plan)) {
    stats->failed_step = "plan";
    return err;
  }
  stats->segments = plan.segment_count;
  stats->ranges_truncated = plan.ranges_truncated;

  uint64_t provider_sizes[kMaxNoteProviders] = {};
  NoteWriter counter(nullptr);
  WriteNotes(snapshot, options, &counter, provider_sizes, /*measuring=*/true);

  Headers h;
  h.phnum = 1 + plan.segment_count;
  h.extended = h.phnum >= PN_XNUM;
  h.notes_offset =
      sizeof(Elf64_Ehdr) + h.phnum * sizeof(Elf64_Phdr) + (h.extended ? sizeof(Elf64_Shdr) : 0);
  h.notes_size = counter.bytes();
  h.data_offset = PageUp(h.notes_offset + h.notes_size);
  stats->notes_bytes = h.notes_size;

  stats->failed_step = "write";
  if (int err = WriteHeaders(plan, h, sink)) return err;
  NoteWriter notes(sink);
  WriteNotes(snapshot, options, &notes, provider_sizes, /*measuring=*/false);
  if (notes.error() != 0) return notes.error();
  if (notes.bytes() != h.notes_size) return EIO;  // cannot happen: limits enforce the size
  if (int err = sink->Skip(h.data_offset - sink->offset())) return err;

  DataWriter data(snapshot, plan, buffers, sink, stats);
  uint64_t end = h.data_offset;
  for (size_t i = 0; i < plan.segment_count; ++i) {
    const PlannedSegment& seg = plan.segments[i];
    if (!seg.has_data) continue;
    if (int err = data.Segment(seg)) return err;
    end += seg.end - seg.start;
  }
  stats->failed_step = "finish";
  if (int err = sink->Finish(end)) return err;
  stats->file_size = end;
  stats->failed_step = "";
  return 0;
}

Result<CoreWriterBuffersOwner> CoreWriterBuffersOwner::Allocate(size_t max_mappings,
                                                                size_t max_extra_ranges,
                                                                size_t io_size) {
  io_size = PageUp(std::max<size_t>(io_size, 64 << 10));
  size_t ranges = max_mappings + max_extra_ranges;
  size_t segments = PlanSegmentCapacity(max_mappings, max_extra_ranges);
  size_t seg_bytes = PageUp(segments * sizeof(PlannedSegment));
  size_t range_bytes = PageUp(ranges * sizeof(ByteRange));
  size_t total = io_size + seg_bytes + range_bytes;
  CoreWriterBuffersOwner owner;
  owner.mapping_ = ScopedMmap::Anonymous(total, /*populate=*/true);  // out of every core
  if (!owner.mapping_.ok()) return Error::FromErrno("mmap", "core writer buffers");
  auto* bytes = static_cast<uint8_t*>(owner.mapping_.get());
  owner.buffers_.io = bytes;
  owner.buffers_.io_size = io_size;
  owner.buffers_.plan.segments = reinterpret_cast<PlannedSegment*>(bytes + io_size);
  owner.buffers_.plan.segment_capacity = segments;
  owner.buffers_.plan.ranges = reinterpret_cast<ByteRange*>(bytes + io_size + seg_bytes);
  owner.buffers_.plan.range_capacity = ranges;
  return owner;
}

}  // namespace cppdiag::dump
