// Async-signal-safe: nothing here allocates, locks or uses stdio.
#include "diag/dump/internal/module_list.h"

#include <elf.h>
#include <link.h>

#include <cstring>

namespace cppdiag::dump {
namespace {

// Bounds against corrupt or hostile memory.
constexpr size_t kMaxPhdrs = 128;
constexpr size_t kMaxDynEntries = 1024;
constexpr size_t kMaxModules = 4096;
constexpr size_t kMaxNamespaces = 16;
constexpr size_t kMaxName = 4096;
// The public part of glibc's struct link_map, what debuggers read.
constexpr size_t kLinkMapPublicSize = 5 * sizeof(uint64_t);
// struct r_debug_extended: r_version, r_map, r_brk, r_state, r_ldbase, r_next.
constexpr size_t kRDebugSize = 6 * sizeof(uint64_t);

class RangeOut {
 public:
  RangeOut(ByteRange* out, size_t capacity, bool exact)
      : out_(out), capacity_(capacity), exact_(exact) {}
  void Add(uint64_t start, uint64_t len) {
    if (len == 0) return;
    if (n_ == capacity_) {
      truncated_ = true;
      return;
    }
    out_[n_++] = ByteRange{start, start + len, exact_};
  }
  size_t count() const { return n_; }
  bool truncated() const { return truncated_; }

 private:
  ByteRange* out_;
  size_t capacity_;
  bool exact_;
  size_t n_ = 0;
  bool truncated_ = false;
};

template <typename T>
bool ReadValue(const ProcessSnapshot& s, uint64_t addr, T* out) {
  return s.ReadMemory(addr, out, sizeof *out) == static_cast<ssize_t>(sizeof *out);
}

// Length of the NUL-terminated string at `addr` including the NUL, or 0.
size_t StringLength(const ProcessSnapshot& s, uint64_t addr) {
  char buf[256];
  size_t total = 0;
  while (total < kMaxName) {
    ssize_t n = s.ReadMemory(addr + total, buf, sizeof buf);
    if (n <= 0) return 0;
    const void* nul = std::memchr(buf, 0, static_cast<size_t>(n));
    if (nul != nullptr) return total + static_cast<size_t>(static_cast<const char*>(nul) - buf) + 1;
    total += static_cast<size_t>(n);
  }
  return 0;
}

// Finds the executable's dynamic section from AT_PHDR; returns its address
// and size in memory.
bool FindExecutableDynamic(const ProcessSnapshot& s, RangeOut* out, uint64_t* dyn_addr,
                           uint64_t* dyn_size) {
  uint64_t phdr_addr = AuxvValue(s, AT_PHDR);
  uint64_t phnum = AuxvValue(s, AT_PHNUM);
  if (phdr_addr == 0 || phnum == 0 || phnum > kMaxPhdrs) return false;
  out->Add(phdr_addr, phnum * sizeof(Elf64_Phdr));
  uint64_t bias = 0;
  bool have_bias = false;
  Elf64_Phdr dynamic{};
  bool have_dynamic = false;
  for (uint64_t i = 0; i < phnum; ++i) {
    Elf64_Phdr ph;
    if (!ReadValue(s, phdr_addr + i * sizeof ph, &ph)) return false;
    if (ph.p_type == PT_PHDR) {
      bias = phdr_addr - ph.p_vaddr;
      have_bias = true;
    } else if (ph.p_type == PT_DYNAMIC) {
      dynamic = ph;
      have_dynamic = true;
    }
  }
  if (!have_dynamic) return false;  // a static executable: no module list
  if (!have_bias) {
    // No PT_PHDR: the headers lie in the mapping of the first PT_LOAD (file
    // offset 0), which starts with the ELF header.
    size_t m = FindMapping(s, phdr_addr);
    if (m == SIZE_MAX || s.mapping(m).offset != 0) return false;
    uint64_t base = s.mapping(m).start;
    for (uint64_t i = 0; i < phnum && !have_bias; ++i) {
      Elf64_Phdr ph;
      if (!ReadValue(s, phdr_addr + i * sizeof ph, &ph)) return false;
      if (ph.p_type == PT_LOAD && ph.p_offset == 0) {
        bias = base - (ph.p_vaddr & ~(ph.p_align > 1 ? ph.p_align - 1 : 0));
        have_bias = true;
      }
    }
    if (!have_bias) return false;
  }
  *dyn_addr = dynamic.p_vaddr + bias;
  *dyn_size = dynamic.p_memsz;
  return true;
}

uint64_t FindDebugPointer(const ProcessSnapshot& s, uint64_t dyn_addr, uint64_t dyn_size) {
  size_t entries = dyn_size / sizeof(Elf64_Dyn);
  if (entries > kMaxDynEntries) entries = kMaxDynEntries;
  for (size_t i = 0; i < entries; ++i) {
    Elf64_Dyn d;
    if (!ReadValue(s, dyn_addr + i * sizeof d, &d)) return 0;
    if (d.d_tag == DT_NULL) return 0;
    if (d.d_tag == DT_DEBUG) return d.d_un.d_ptr;
  }
  return 0;
}

void WalkLinkMaps(const ProcessSnapshot& s, uint64_t lm, size_t* budget, RangeOut* out) {
  uint64_t prev = 0;
  while (lm != 0 && *budget > 0) {
    --*budget;
    uint64_t fields[5];  // l_addr, l_name, l_ld, l_next, l_prev
    if (!ReadValue(s, lm, &fields)) return;
    out->Add(lm, kLinkMapPublicSize);
    if (fields[4] != prev) return;  // not a consistent list: stop
    if (fields[1] != 0) out->Add(fields[1], StringLength(s, fields[1]));
    prev = lm;
    lm = fields[3];
  }
}

}  // namespace

uint64_t AuxvValue(const ProcessSnapshot& snapshot, uint64_t type) {
  std::span<const uint8_t> auxv = snapshot.auxv();
  for (size_t off = 0; off + 16 <= auxv.size(); off += 16) {
    uint64_t kv[2];
    std::memcpy(kv, auxv.data() + off, sizeof kv);
    if (kv[0] == AT_NULL) break;
    if (kv[0] == type) return kv[1];
  }
  return 0;
}

size_t CollectModuleListRanges(const ProcessSnapshot& snapshot, bool exact, ByteRange* out,
                               size_t capacity, bool* truncated) {
  RangeOut ranges(out, capacity, exact);
  uint64_t dyn_addr = 0, dyn_size = 0;
  if (FindExecutableDynamic(snapshot, &ranges, &dyn_addr, &dyn_size)) {
    ranges.Add(dyn_addr, dyn_size);
    uint64_t r_debug = FindDebugPointer(snapshot, dyn_addr, dyn_size);
    size_t budget = kMaxModules;
    // r_debug_extended chains one r_debug per link-map namespace (r_version >= 2).
    for (size_t ns = 0; r_debug != 0 && ns < kMaxNamespaces; ++ns) {
      uint64_t rd[6] = {};  // r_version (int), r_map, r_brk, r_state, r_ldbase, r_next
      if (!ReadValue(snapshot, r_debug, &rd[0]) || !ReadValue(snapshot, r_debug + 8, &rd[1])) break;
      int32_t version = static_cast<int32_t>(rd[0] & 0xffffffff);
      if (version >= 2 && !ReadValue(snapshot, r_debug + 40, &rd[5])) version = 1;
      ranges.Add(r_debug, version >= 2 ? kRDebugSize : 5 * sizeof(uint64_t));
      WalkLinkMaps(snapshot, rd[1], &budget, &ranges);
      r_debug = version >= 2 ? rd[5] : 0;
    }
  }
  if (truncated != nullptr) *truncated = ranges.truncated();
  return ranges.count();
}

}  // namespace cppdiag::dump
