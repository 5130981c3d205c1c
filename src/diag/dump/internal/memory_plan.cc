// Async-signal-safe: nothing here allocates, locks or uses stdio.
#include "diag/dump/internal/memory_plan.h"

#include <elf.h>

#include <algorithm>
#include <cstring>

namespace cppdiag::dump {
namespace {

// Enough for glibc's struct pthread (about 2.3 KiB).
constexpr uint64_t kTcbBytes = 4096;

uint64_t PageDown(uint64_t a) { return a & ~(kPageSize - 1); }
uint64_t PageUp(uint64_t a) { return (a + kPageSize - 1) & ~(kPageSize - 1); }

uint32_t SegmentFlags(const MappingSnapshot& m) {
  return (m.read ? PF_R : 0) | (m.write ? PF_W : 0) | (m.exec ? PF_X : 0);
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// Whether the mapping's bytes may be stored at all, whatever the type: never
// what the process marked MADV_DONTDUMP nor device memory (dd, io, pf), as
// the kernel's core. [vvar] (dd, io, pf) is named too for snapshots without
// VmFlags: reading it can fault.
bool Storable(const MappingSnapshot& m) {
  return m.read && !m.never_dumped() && m.path != "[vvar]" && m.path != "[vvar_vclock]" &&
         m.path != "[vsyscall]" && m.end > m.start;
}

// Whether a private file mapping holds pages that are private copies (written
// since mapped: relocations, .data, .bss). `*known` is false when the
// snapshot cannot tell.
bool HasPrivateCopies(const ProcessSnapshot& s, const MappingSnapshot& m, bool* known) {
  uint8_t flags[512];
  for (uint64_t addr = m.start; addr < m.end;) {
    size_t n = std::min<uint64_t>(sizeof flags, (m.end - addr) / kPageSize);
    if (n == 0) break;
    if (s.QueryPages(addr, n, flags) != 0) {
      *known = false;
      return false;
    }
    for (size_t i = 0; i < n; ++i) {
      bool swapped = (flags[i] & kPageSwapped) != 0;
      bool private_copy = (flags[i] & kPagePresent) && !(flags[i] & kPageFileOrSharedAnon);
      if (swapped || private_copy) {
        *known = true;
        return true;
      }
    }
    addr += n * kPageSize;
  }
  *known = true;
  return false;
}

// Read-only private data followed by the writable data of the same file: the
// RELRO part of a module (.got, .dynamic with DT_DEBUG), written at load time.
bool IsRelro(const ProcessSnapshot& s, size_t i) {
  const MappingSnapshot& m = s.mapping(i);
  if (m.write || m.exec || i + 1 >= s.mapping_count()) return false;
  const MappingSnapshot& next = s.mapping(i + 1);
  return next.start == m.end && next.write && !next.shared && next.inode == m.inode &&
         next.dev_major == m.dev_major && next.dev_minor == m.dev_minor;
}

bool WrittenPrivateFileMapping(const ProcessSnapshot& s, size_t i) {
  const MappingSnapshot& m = s.mapping(i);
  if (!m.file_backed() || m.shared) return false;
  bool known = false;
  bool copies = HasPrivateCopies(s, m, &known);
  return known ? copies : m.write || IsRelro(s, i);  // without page flags: what is likely written
}

// The kernel's vma_dump_size() (fs/coredump.c) for a mapping that may be
// stored at all: whether its whole data goes into the core under `filter`
// (/proc/<pid>/coredump_filter). The first page of ELF modules (bit 4) is
// decided apart, in CollectRanges.
bool KernelDumpsWhole(const ProcessSnapshot& s, size_t i, uint32_t filter) {
  const MappingSnapshot& m = s.mapping(i);
  if (m.hugetlb) return (filter & (m.shared ? kFilterHugetlbShared : kFilterHugetlbPrivate)) != 0;
  if (m.shared) {
    // A shared mapping of a file with no link left (shmem, memfd, SysV,
    // deleted files) counts as anonymous shared memory.
    return (filter & (IsAnonymousShared(m) ? kFilterAnonShared : kFilterFileShared)) != 0;
  }
  // Private: written memory (the kernel: the mapping has an anon_vma) is
  // anonymous private memory, then a file's pages are file-backed private.
  if (m.anonymous() || WrittenPrivateFileMapping(s, i)) return (filter & kFilterAnonPrivate) != 0;
  return m.file_backed() && (filter & kFilterFilePrivate) != 0;
}

bool IsElfModuleStart(const ProcessSnapshot& s, const MappingSnapshot& m) {
  if (!m.file_backed() || m.offset != 0 || !Storable(m)) return false;
  char magic[SELFMAG];
  return s.ReadMemory(m.start, magic, SELFMAG) == SELFMAG &&
         std::memcmp(magic, ELFMAG, SELFMAG) == 0;
}

bool StoreWholeMapping(const ProcessSnapshot& s, size_t i, DumpType type) {
  const MappingSnapshot& m = s.mapping(i);
  if (!Storable(m)) return false;
  if (m.path == "[vdso]") return true;  // the kernel always dumps it; debuggers read its ELF image
  switch (type) {
    case DumpType::kFull:
      return true;
    case DumpType::kHeap:
      return KernelDumpsWhole(s, i, s.process().coredump_filter);
    case DumpType::kMini:
      return m.size() <= kMiniModuleDataLimit && WrittenPrivateFileMapping(s, i);
    case DumpType::kTriage:
      return false;
  }
  return false;
}

class Ranges {
 public:
  explicit Ranges(const PlanBuffers& b) : out_(b.ranges), capacity_(b.range_capacity) {}
  void Add(uint64_t start, uint64_t end, bool exact) {
    if (end <= start) return;
    if (n_ == capacity_) {
      truncated_ = true;
      return;
    }
    out_[n_++] = ByteRange{start, end, exact};
  }
  ByteRange* data() { return out_; }
  size_t& count() { return n_; }
  size_t room() const { return capacity_ - n_; }
  bool& truncated() { return truncated_; }

 private:
  ByteRange* out_;
  size_t capacity_;
  size_t n_ = 0;
  bool truncated_ = false;
};

void CollectRanges(const ProcessSnapshot& s, DumpType type, Ranges* ranges) {
  for (size_t i = 0; i < s.mapping_count(); ++i) {
    const MappingSnapshot& m = s.mapping(i);
    bool headers = type != DumpType::kHeap || (s.process().coredump_filter & kFilterElfHeaders);
    if (StoreWholeMapping(s, i, type)) {
      ranges->Add(m.start, m.end, false);
    } else if (type != DumpType::kFull && headers && IsElfModuleStart(s, m)) {
      ranges->Add(m.start, std::min(m.end, m.start + kPageSize), false);
    }
  }
  // Stacks, TCBs and the module list: mini's and triage's content, and a
  // heap dump's too (they are whole mappings under the default filter; a
  // filter without bit 0 still leaves the threads' backtraces).
  if (type != DumpType::kFull) {
    for (size_t t = 0; t < s.thread_count(); ++t) {
      uint64_t sp = s.thread(t).regs.rsp;
      size_t i = sp == 0 ? SIZE_MAX : FindMapping(s, sp);
      if (i == SIZE_MAX) continue;
      const MappingSnapshot& m = s.mapping(i);
      uint64_t from = sp - kRedZone < m.start ? m.start : sp - kRedZone;
      ranges->Add(PageDown(from), m.end, false);
    }
    // Each thread's TCB (struct pthread at fs_base): libthread_db walks them
    // to list threads. The main thread's lies outside its stack. Mini keeps
    // the pages around it (static TLS sits just below); triage only the TCB.
    for (size_t t = 0; t < s.thread_count(); ++t) {
      uint64_t fs = s.thread(t).regs.fs_base;
      if (fs == 0 || FindMapping(s, fs) == SIZE_MAX) continue;
      if (type == DumpType::kTriage) {
        ranges->Add(fs, fs + kTcbBytes, true);
      } else {
        ranges->Add(PageDown(fs) - kPageSize, PageUp(fs + kTcbBytes), false);
      }
    }
    bool truncated = false;
    size_t n = CollectModuleListRanges(
        s, type == DumpType::kTriage, ranges->data() + ranges->count(), ranges->room(), &truncated);
    ranges->count() += n;
    if (truncated) ranges->truncated() = true;
  }
}

class Segments {
 public:
  explicit Segments(const PlanBuffers& b) : out_(b.segments), capacity_(b.segment_capacity) {}
  bool Add(uint64_t start, uint64_t end, const MappingSnapshot& m, bool data, bool exact) {
    if (end <= start) return true;
    if (n_ == capacity_) return false;
    PlannedSegment& seg = out_[n_++];
    seg.start = start;
    seg.end = end;
    seg.flags = SegmentFlags(m);
    seg.has_data = data;
    seg.exact = data && exact;
    seg.anonymous = data && m.anonymous();
    return true;
  }
  size_t count() const { return n_; }

 private:
  PlannedSegment* out_;
  size_t capacity_;
  size_t n_ = 0;
};

}  // namespace

bool IsAnonymousShared(const MappingSnapshot& m) {
  if (!m.shared) return false;
  std::string_view p = m.path;
  bool deleted = p.size() >= 10 && p.substr(p.size() - 10) == " (deleted)";
  return deleted || StartsWith(p, "/SYSV");
}

int PlanMemory(const ProcessSnapshot& s, DumpType type, const PlanBuffers& buffers,
               MemoryPlan* plan) {
  Ranges ranges(buffers);
  CollectRanges(s, type, &ranges);
  ByteRange* r = ranges.data();
  size_t nr = ranges.count();
  std::sort(r, r + nr, [](const ByteRange& a, const ByteRange& b) { return a.start < b.start; });

  Segments segments(buffers);
  size_t first = 0;  // ranges before this one end before the current mapping
  for (size_t i = 0; i < s.mapping_count(); ++i) {
    const MappingSnapshot& m = s.mapping(i);
    while (first < nr && PageUp(r[first].end) <= m.start) ++first;
    uint64_t cursor = m.start;
    bool open = false;
    uint64_t piece_start = 0, piece_end = 0;
    bool piece_exact = true;
    auto close_piece = [&]() {
      bool ok = segments.Add(cursor, piece_start, m, false, false) &&
                segments.Add(piece_start, piece_end, m, true, piece_exact);
      cursor = piece_end;
      open = false;
      return ok;
    };
    if (Storable(m)) {
      for (size_t k = first; k < nr && PageDown(r[k].start) < m.end; ++k) {
        uint64_t a = std::max(PageDown(r[k].start), m.start);
        uint64_t b = std::min(PageUp(r[k].end), m.end);
        if (a >= b) continue;
        if (open && a <= piece_end) {
          piece_end = std::max(piece_end, b);
          piece_exact = piece_exact && r[k].exact;
          continue;
        }
        if (open && !close_piece()) return ENOBUFS;
        open = true;
        piece_start = a;
        piece_end = b;
        piece_exact = r[k].exact;
      }
      if (open && !close_piece()) return ENOBUFS;
    }
    if (!segments.Add(cursor, m.end, m, false, false)) return ENOBUFS;
  }
  plan->segments = buffers.segments;
  plan->segment_count = segments.count();
  plan->ranges = r;
  plan->range_count = nr;
  plan->ranges_truncated = ranges.truncated();
  return 0;
}

}  // namespace cppdiag::dump
