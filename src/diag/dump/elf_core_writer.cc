// Async-signal-safe (WriteElfCore and everything it calls): no allocation, no
// locks, no stdio, no exceptions. CoreWriterBuffersOwner::Allocate is not.
#include "diag/dump/elf_core_writer.h"

#include <elf.h>
#include <sys/mman.h>
#include <sys/procfs.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace cppdiag::dump {
namespace {

// NT_FILE is capped like the kernel's (MAX_FILE_NOTE_SIZE).
constexpr uint64_t kMaxFileNoteSize = 4 << 20;
constexpr size_t kMaxQueryPages = 512;
// Not yet in every elf.h: the kernel's note describing the XSAVE layout.
constexpr uint32_t kNtX86XsaveLayout = 0x205;

uint64_t Align4(uint64_t v) { return (v + 3) & ~uint64_t{3}; }
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

void FillPrstatus(const ProcessSnapshot& s, const ThreadSnapshot& t, elf_prstatus* pr) {
  std::memset(pr, 0, sizeof *pr);
  const ProcessInfo& p = s.process();
  // As the kernel does: every thread carries the signal that ended the process.
  int sig = s.siginfo() != nullptr ? s.siginfo()->si_signo : t.cursig;
  pr->pr_info.si_signo = sig;
  pr->pr_cursig = static_cast<short>(sig);
  pr->pr_sigpend = t.sigpend;
  pr->pr_sighold = t.sighold;
  pr->pr_pid = t.tid;
  pr->pr_ppid = p.ppid;
  pr->pr_pgrp = p.pgrp;
  pr->pr_sid = p.sid;
  pr->pr_utime.tv_sec = t.utime_us / 1000000;
  pr->pr_utime.tv_usec = t.utime_us % 1000000;
  pr->pr_stime.tv_sec = t.stime_us / 1000000;
  pr->pr_stime.tv_usec = t.stime_us % 1000000;
  static_assert(sizeof pr->pr_reg == sizeof t.regs, "pr_reg is user_regs_struct");
  std::memcpy(&pr->pr_reg, &t.regs, sizeof t.regs);
  pr->pr_fpvalid = t.has_fpregs ? 1 : 0;
}

void FillPrpsinfo(const ProcessSnapshot& s, elf_prpsinfo* ps) {
  std::memset(ps, 0, sizeof *ps);
  const ProcessInfo& p = s.process();
  ps->pr_state = 0;
  ps->pr_sname = 'R';
  ps->pr_nice = static_cast<char>(p.nice);
  ps->pr_uid = p.uid;
  ps->pr_gid = p.gid;
  ps->pr_pid = p.pid;
  ps->pr_ppid = p.ppid;
  ps->pr_pgrp = p.pgrp;
  ps->pr_sid = p.sid;
  std::memcpy(ps->pr_fname, p.comm, std::min(sizeof ps->pr_fname, sizeof p.comm));
  ps->pr_fname[sizeof ps->pr_fname - 1] = '\0';
  std::memcpy(ps->pr_psargs, p.psargs, std::min(sizeof ps->pr_psargs, sizeof p.psargs));
  ps->pr_psargs[sizeof ps->pr_psargs - 1] = '\0';
}

// NT_FILE: count, page size, (start, end, offset in pages) per file mapping,
// then the names, NUL-terminated. Returns the descriptor size.
uint64_t FileNoteSize(const ProcessSnapshot& s, size_t* count) {
  uint64_t size = 2 * sizeof(uint64_t);
  size_t n = 0;
  for (size_t i = 0; i < s.mapping_count(); ++i) {
    const MappingSnapshot& m = s.mapping(i);
    if (!m.file_backed()) continue;
    uint64_t more = 3 * sizeof(uint64_t) + m.path.size() + 1;
    if (size + more > kMaxFileNoteSize) break;
    size += more;
    ++n;
  }
  *count = n;
  return size;
}

void WriteFileNote(const ProcessSnapshot& s, NoteWriter* w) {
  size_t count = 0;
  uint64_t size = FileNoteSize(s, &count);
  w->Begin("CORE", NT_FILE, size);
  uint64_t head[2] = {count, kPageSize};
  w->Append(head, sizeof head);
  size_t n = 0;
  for (size_t i = 0; i < s.mapping_count() && n < count; ++i) {
    const MappingSnapshot& m = s.mapping(i);
    if (!m.file_backed()) continue;
    uint64_t e[3] = {m.start, m.end, m.offset / kPageSize};
    w->Append(e, sizeof e);
    ++n;
  }
  n = 0;
  for (size_t i = 0; i < s.mapping_count() && n < count; ++i) {
    const MappingSnapshot& m = s.mapping(i);
    if (!m.file_backed()) continue;
    w->Append(m.path.data(), m.path.size());
    w->Append("", 1);
    ++n;
  }
  w->End();
}

void WriteThreadRegisterNotes(const ThreadSnapshot& t, NoteWriter* w) {
  if (t.has_fpregs) w->Note("CORE", NT_PRFPREG, &t.fpregs, sizeof t.fpregs);
  if (t.xstate != nullptr && t.xstate_size > 0) {
    w->Note("LINUX", NT_X86_XSTATE, t.xstate, t.xstate_size);
  }
}

// All notes, in the kernel's order, then ours. `provider_sizes` is filled
// when measuring and enforced when writing.
void WriteNotes(const ProcessSnapshot& s, const CoreWriterOptions& o, NoteWriter* w,
                uint64_t* provider_sizes, bool measuring) {
  for (size_t i = 0; i < s.thread_count(); ++i) {
    const ThreadSnapshot& t = s.thread(i);
    elf_prstatus pr;
    FillPrstatus(s, t, &pr);
    w->Note("CORE", NT_PRSTATUS, &pr, sizeof pr);
    if (i == 0) {
      elf_prpsinfo ps;
      FillPrpsinfo(s, &ps);
      w->Note("CORE", NT_PRPSINFO, &ps, sizeof ps);
      if (const siginfo_t* si = s.siginfo()) w->Note("CORE", NT_SIGINFO, si, sizeof *si);
      std::span<const uint8_t> auxv = s.auxv();
      if (!auxv.empty()) w->Note("CORE", NT_AUXV, auxv.data(), auxv.size());
      WriteFileNote(s, w);
    }
    WriteThreadRegisterNotes(t, w);
  }
  std::span<const uint8_t> layout = s.xsave_layout();
  if (!layout.empty()) w->Note("LINUX", kNtX86XsaveLayout, layout.data(), layout.size());
  if (o.info != nullptr) {
    uint8_t desc[kCppdiagInfoSize];
    EncodeCppdiagInfo(*o.info, desc);
    w->Note(kCppdiagNoteName, kNtCppdiagInfo, desc, sizeof desc);
  }
  for (size_t i = 0; i < o.provider_count && i < kMaxNoteProviders; ++i) {
    if (o.providers[i].fn == nullptr) continue;
    uint64_t before = w->bytes();
    if (!measuring) w->LimitTo(provider_sizes[i]);
    o.providers[i].fn(o.providers[i].context, w);
    if (measuring) {
      w->End();
      provider_sizes[i] = w->bytes() - before;
    } else {
      w->PadToLimit();
    }
  }
  w->End();
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
  void* p = ::mmap(nullptr, total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) return Error::FromErrno("mmap", "core writer buffers");
  ::madvise(p, total, MADV_DONTDUMP);  // keep the dumper's buffers out of kernel cores too
  CoreWriterBuffersOwner owner;
  owner.base_ = p;
  owner.size_ = total;
  auto* bytes = static_cast<uint8_t*>(p);
  owner.buffers_.io = bytes;
  owner.buffers_.io_size = io_size;
  owner.buffers_.plan.segments = reinterpret_cast<PlannedSegment*>(bytes + io_size);
  owner.buffers_.plan.segment_capacity = segments;
  owner.buffers_.plan.ranges = reinterpret_cast<ByteRange*>(bytes + io_size + seg_bytes);
  owner.buffers_.plan.range_capacity = ranges;
  return owner;
}

CoreWriterBuffersOwner::CoreWriterBuffersOwner(CoreWriterBuffersOwner&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      buffers_(std::exchange(other.buffers_, {})) {}

CoreWriterBuffersOwner& CoreWriterBuffersOwner::operator=(CoreWriterBuffersOwner&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) ::munmap(base_, size_);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
    buffers_ = std::exchange(other.buffers_, {});
  }
  return *this;
}

CoreWriterBuffersOwner::~CoreWriterBuffersOwner() {
  if (base_ != nullptr) ::munmap(base_, size_);
}

}  // namespace cppdiag::dump
