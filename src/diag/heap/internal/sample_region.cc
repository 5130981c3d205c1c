// Runs inside malloc: no allocation, no stdio; errno is kept.
#include "diag/heap/internal/sample_region.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace cppdiag::heap::hooks {
namespace {

constexpr size_t kCommitBytes = 64 * 1024;

// Keeps errno across the region's system calls: malloc's callers may not see
// it change on success.
struct SavedErrno {
  int value = errno;
  ~SavedErrno() { errno = value; }
};

}  // namespace

bool SampleRegion::Init() {
  if (span_ != 0) return true;
  SavedErrno saved;
  for (int shift : {32, 28}) {
    int classes = shift - 4 + 1;  // slots of 16 B << c, up to the area's size
    if (classes > kMaxClasses) classes = kMaxClasses;
    size_t area = size_t{1} << shift;
    size_t want = area * static_cast<size_t>(classes);
    // Reserve one area more, to align the start to an area.
    void* m =
        mmap(nullptr, want + area, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) continue;
    uintptr_t start = reinterpret_cast<uintptr_t>(m);
    uintptr_t lo = (start + area - 1) & ~(area - 1);
    if (lo > start) munmap(m, lo - start);
    uintptr_t end = start + want + area;
    if (end > lo + want) munmap(reinterpret_cast<void*>(lo + want), end - (lo + want));
    size_t links_bytes = sizeof(std::atomic<uint32_t>) * kSlotsPerClass * classes;
    void* links = mmap(nullptr, links_bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (links == MAP_FAILED) {
      munmap(reinterpret_cast<void*>(lo), want);
      return false;
    }
    links_ = static_cast<std::atomic<uint32_t>*>(links);  // zero pages: valid atomics
    for (int c = 0; c < classes; ++c) {
      size_t per_area = area >> (c + 4);
      class_[c].slots =
          per_area < kSlotsPerClass ? static_cast<uint32_t>(per_area) : kSlotsPerClass;
    }
    lo_ = lo;
    area_shift_ = shift;
    classes_ = classes;
    span_ = want;
    return true;
  }
  return false;
}

int SampleRegion::ClassOf(size_t need) const {
  if (need <= 16) return 0;
  int c = 64 - __builtin_clzll(need - 1) - 4;  // ceil(log2(need)) - 4
  return c < classes_ ? c : -1;
}

bool SampleRegion::Commit(int c, uint32_t i) {
  Class& k = class_[c];
  while (k.commit_lock.exchange(true, std::memory_order_acquire)) {
    while (k.commit_lock.load(std::memory_order_relaxed)) __builtin_ia32_pause();
  }
  bool ok = true;
  uint32_t have = k.committed.load(std::memory_order_relaxed);
  size_t slot = size_t{16} << c;
  uint32_t chunk = slot >= kCommitBytes ? 1 : static_cast<uint32_t>(kCommitBytes / slot);
  while (have <= i) {
    uint32_t n = have + chunk <= k.slots ? chunk : k.slots - have;
    SavedErrno saved;
    if (mprotect(SlotAddress(c, have), n * slot, PROT_READ | PROT_WRITE) != 0) {
      ok = false;
      break;
    }
    have += n;
    k.committed.store(have, std::memory_order_release);
  }
  k.commit_lock.store(false, std::memory_order_release);
  return ok;
}

void* SampleRegion::Alloc(size_t size, size_t alignment, bool zero) {
  if (span_ == 0) return nullptr;
  size_t need = size > alignment ? size : alignment;
  int c = ClassOf(need);
  if (c < 0) return nullptr;
  Class& k = class_[c];
  std::atomic<uint32_t>* links = links_ + size_t{static_cast<unsigned>(c)} * kSlotsPerClass;
  uint64_t head = k.free_head.load(std::memory_order_acquire);
  while (static_cast<uint32_t>(head) != 0) {  // the low half: slot index + 1; 0 when empty
    uint32_t i = static_cast<uint32_t>(head) - 1;
    // A stale link (the slot popped and pushed again meanwhile) fails the
    // exchange: the tag has moved on.
    uint64_t next = ((head >> 32) + 1) << 32 | links[i].load(std::memory_order_relaxed);
    if (k.free_head.compare_exchange_weak(head, next, std::memory_order_acquire,
                                          std::memory_order_acquire)) {
      live_bytes_.fetch_add(size_t{16} << c, std::memory_order_relaxed);
      char* p = SlotAddress(c, i);
      // Slots of kReleaseBytes or more were given back, so read as zero.
      if (zero && (size_t{16} << c) < kReleaseBytes) std::memset(p, 0, size);
      return p;
    }
  }
  if (k.bump.load(std::memory_order_relaxed) >= k.slots) return nullptr;
  uint32_t i = k.bump.fetch_add(1, std::memory_order_relaxed);
  if (i >= k.slots) return nullptr;
  if (i >= k.committed.load(std::memory_order_acquire) && !Commit(c, i)) return nullptr;
  live_bytes_.fetch_add(size_t{16} << c, std::memory_order_relaxed);
  return SlotAddress(c, i);  // never used: zero
}

void SampleRegion::Free(void* p) {
  uintptr_t off = reinterpret_cast<uintptr_t>(p) - lo_;
  if (off >= span_) return;
  int c = static_cast<int>(off >> area_shift_);
  uintptr_t in_area = off & ((uintptr_t{1} << area_shift_) - 1);
  size_t slot = size_t{16} << c;
  if ((in_area & (slot - 1)) != 0) return;
  uint32_t i = static_cast<uint32_t>(in_area >> (c + 4));
  Class& k = class_[c];
  if (i >= k.bump.load(std::memory_order_relaxed) || i >= k.slots) return;
  live_bytes_.fetch_sub(slot, std::memory_order_relaxed);
  if (slot >= kReleaseBytes) {
    SavedErrno saved;
    madvise(p, slot, MADV_DONTNEED);
  }
  std::atomic<uint32_t>* links = links_ + size_t{static_cast<unsigned>(c)} * kSlotsPerClass;
  uint64_t head = k.free_head.load(std::memory_order_relaxed);
  for (;;) {
    links[i].store(static_cast<uint32_t>(head), std::memory_order_relaxed);
    uint64_t next = ((head >> 32) + 1) << 32 | (uint64_t{i} + 1);
    if (k.free_head.compare_exchange_weak(head, next, std::memory_order_release,
                                          std::memory_order_relaxed)) {
      return;
    }
  }
}

size_t SampleRegion::UsableSize(const void* p) const {
  uintptr_t off = reinterpret_cast<uintptr_t>(p) - lo_;
  if (off >= span_) return 0;
  int c = static_cast<int>(off >> area_shift_);
  size_t slot = size_t{16} << c;
  return slot - (off & (slot - 1));
}

}  // namespace cppdiag::heap::hooks
