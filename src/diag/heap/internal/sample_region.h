// The sampled blocks' own memory. A sampled allocation is served from this
// region instead of glibc, so free() recognises it by its address alone (one
// range comparison on the fast path, as tcmalloc keeps its sampled objects
// apart) and glibc never sees a sampled block.
//
// Layout: one reserved range (PROT_NONE and MADV_DONTDUMP until used: a
// committed range is readable and dumped), split into an area per
// power-of-two size class (16 B, 32 B, ... up to the area's size), each area
// of 2^area_shift bytes at an address aligned to it, so a block's class is
// (p - lo) >> area_shift and a slot of class c is aligned to its own size
// (memalign's alignments up to the slot size come free). A class holds at
// most kSlotsPerClass slots, committed (mprotect) 64 KiB or one slot at a
// time as they are first used and never unmapped; a freed slot of 256 KiB
// or more gives its pages back (MADV_DONTNEED), so that freed memory leaves
// the RSS as glibc's would: glibc serves requests above 128 KiB (its default
// mmap threshold), which are these slots' sizes, with mmap and unmaps them on
// free, but keeps smaller freed chunks in its bins. Releasing smaller slots
// too (64 KiB, as before) cost a madvise and a page fault for about 40 % of
// alloc_bench's samples: +5 % CPU in system time. Freed slots go on a per-class
// lock-free stack (index + ABA tag in one word, links in a side array).
//
// Alloc and Free neither allocate nor block, except the first use of a chunk
// of slots (a spinlock around one mprotect), so the region may be used inside
// malloc; not from a signal handler that interrupted the same thread's Alloc.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cppdiag::heap::hooks {

class SampleRegion {
 public:
  static constexpr int kMaxClasses = 29;                // 16 B .. 4 GiB
  static constexpr uint32_t kSlotsPerClass = 1u << 15;  // beyond the live table's capacity
  static constexpr size_t kReleaseBytes = size_t{256} << 10;

  constexpr SampleRegion() = default;
  SampleRegion(const SampleRegion&) = delete;
  SampleRegion& operator=(const SampleRegion&) = delete;
  // Trivially destructible: static storage that threads still use at exit
  // keeps its mappings.

  // Reserves the address space: areas of 4 GiB (29 classes, 116 GiB of
  // PROT_NONE address space, no memory), or of 256 MiB where the address
  // space is limited. Normal context; once. False when nothing could be
  // reserved.
  bool Init();
  bool ok() const { return span_ != 0; }

  uintptr_t lo() const { return lo_; }
  uintptr_t span() const { return span_; }
  bool Contains(const void* p) const { return reinterpret_cast<uintptr_t>(p) - lo_ < span_; }

  // A block of at least `size` bytes aligned to `alignment` (a power of two),
  // zero-filled when `zero`; nullptr when the size has no class or the class
  // is full.
  void* Alloc(size_t size, size_t alignment, bool zero);

  // Gives back a block Alloc returned (once). Anything else in the range (not
  // the start of a slot) is ignored.
  void Free(void* p);

  // After fork in the child: a commit lock may have been held by a thread
  // that no longer exists.
  void ResetLocksAfterFork() {
    for (Class& k : class_) k.commit_lock.store(false, std::memory_order_relaxed);
  }

  // The usable size of a block of the region: its slot's size.
  size_t UsableSize(const void* p) const;

  // Bytes of the slots handed out and not freed: what exact accounting, when
  // it starts, adds to glibc's in-use figure.
  uint64_t live_bytes() const { return live_bytes_.load(std::memory_order_relaxed); }

  // The largest block the region serves.
  size_t max_block() const { return classes_ == 0 ? 0 : size_t{16} << (classes_ - 1); }

 private:
  struct Class {
    std::atomic<uint64_t> free_head{0};  // (tag << 32) | (slot index + 1, or 0: empty)
    std::atomic<uint32_t> bump{0};       // slots handed out at least once
    std::atomic<uint32_t> committed{0};  // slots made readable and writable
    std::atomic<bool> commit_lock{false};
    uint32_t slots = 0;
  };
  int ClassOf(size_t need) const;
  char* SlotAddress(int c, uint32_t i) const {
    return reinterpret_cast<char*>(lo_ + (uintptr_t{static_cast<unsigned>(c)} << area_shift_) +
                                   (uintptr_t{i} << (c + 4)));
  }
  bool Commit(int c, uint32_t i);

  uintptr_t lo_ = 0;
  uintptr_t span_ = 0;  // 0 until Init: Contains is false for every pointer
  int area_shift_ = 0;
  int classes_ = 0;
  std::atomic<uint64_t> live_bytes_{0};
  std::atomic<uint32_t>* links_ = nullptr;  // kSlotsPerClass per class: the free stacks' links
  Class class_[kMaxClasses];
};

}  // namespace cppdiag::heap::hooks
