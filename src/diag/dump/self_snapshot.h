// The live process itself as a ProcessSnapshot, for self-dumps: mappings from
// /proc/self/smaps (each mapping's maps line, parsed with the allocation-free
// ParseMapsLine, and its VmFlags: MADV_DONTDUMP, device memory), the
// coredump_filter from /proc/self/coredump_filter, memory read through
// /proc/self/mem when a descriptor on it is given, else with process_vm_readv
// (either way an unreadable range is an error, never a SIGSEGV), page
// residency from /proc/self/pagemap, threads from thread_capture.h.
//
// Why /proc/self/mem first: process_vm_readv pins the pages it reads
// (FOLL_PIN), and the kernel unshares a copy-on-write anonymous page that is
// pinned. The fork-mode child (fork_snapshot.h) would then copy every page
// of the parent it reads, up to the whole RssAnon, where the headroom rule
// allows for half of it. A pread of /proc/self/mem (access_remote_vm) does
// not pin, so the child's reads share the parent's pages. process_vm_readv
// stays the fallback: a non-dumpable process cannot open /proc/self/mem, and
// a process out of descriptors may not get one.
//
// Internal to the dump engine. Every descriptor and buffer is handed in by
// the caller, prepared at start; after that the class is async-signal-safe
// (no allocation, no locks, no stdio).
#pragma once

#include <cstddef>
#include <cstdint>

#include "diag/dump/process_snapshot.h"

namespace cppdiag::dump {

class SelfSnapshot final : public ProcessSnapshot {
 public:
  // The part of maps_text that smaps is read through (less when maps_text is
  // small): longer lines are cut to it.
  static constexpr size_t kSmapsWindowBytes = 32 << 10;

  struct Resources {
    int mem_fd = -1;              // /proc/self/mem, or -1 (process_vm_readv)
    int pagemap_fd = -1;          // /proc/self/pagemap, or -1
    int smaps_fd = -1;            // /proc/self/smaps
    int coredump_filter_fd = -1;  // /proc/self/coredump_filter; -1: the kernel's default
    // The maps lines of smaps are kept here (what /proc/self/maps would
    // show: the mappings' paths view it); its last kSmapsWindowBytes are the
    // read window.
    char* maps_text = nullptr;
    size_t maps_capacity = 0;
    MappingSnapshot* mappings = nullptr;
    size_t max_mappings = 0;
  };

  SelfSnapshot() = default;
  SelfSnapshot(const SelfSnapshot&) = delete;
  SelfSnapshot& operator=(const SelfSnapshot&) = delete;

  void Configure(const Resources& resources) { res_ = resources; }
  // What does not change while the process lives: auxv, comm, arguments.
  void SetStatic(const uint8_t* auxv, size_t auxv_size, const char* comm, const char* psargs);
  void SetXsaveLayout(const uint8_t* layout, size_t size) {
    layout_ = layout;
    layout_size_ = size;
  }

  // Reads the mappings, their flags, the coredump filter and the process
  // identity now. Returns 0 or an errno value; `*truncated` tells whether
  // mappings were left out for lack of room.
  int Load(bool* truncated);
  void SetThreads(const ThreadSnapshot* const* threads, size_t count) {
    threads_ = threads;
    thread_count_ = count;
  }
  void SetSiginfo(const siginfo_t* si) { siginfo_ = si; }
  // Bytes that reads of [start, start + size) return instead of memory: the
  // dumping thread's stack as it was when captured (thread_capture.h).
  void SetStackCopy(uint64_t start, const uint8_t* data, size_t size) {
    copy_start_ = start;
    copy_data_ = data;
    copy_size_ = size;
  }

  const ProcessInfo& process() const override { return info_; }
  size_t thread_count() const override { return thread_count_; }
  const ThreadSnapshot& thread(size_t i) const override { return *threads_[i]; }
  size_t mapping_count() const override { return mapping_count_; }
  const MappingSnapshot& mapping(size_t i) const override { return res_.mappings[i]; }
  std::span<const uint8_t> auxv() const override { return {auxv_, auxv_size_}; }
  std::span<const uint8_t> xsave_layout() const override { return {layout_, layout_size_}; }
  const siginfo_t* siginfo() const override { return siginfo_; }
  ssize_t ReadMemory(uint64_t addr, void* buf, size_t len) const override;
  int QueryPages(uint64_t addr, size_t npages, uint8_t* flags) const override;

 private:
  ssize_t ReadWithProcessVm(uint64_t addr, uint8_t* out, size_t len) const;
  ssize_t ReadOnce(uint64_t addr, uint8_t* out, size_t len) const;
  int LoadMappings(bool* truncated);
  uint32_t ReadCoredumpFilter() const;

  Resources res_;
  ProcessInfo info_;
  const uint8_t* auxv_ = nullptr;
  size_t auxv_size_ = 0;
  const uint8_t* layout_ = nullptr;
  size_t layout_size_ = 0;
  char comm_[16] = {};
  char psargs_[80] = {};
  size_t mapping_count_ = 0;
  const ThreadSnapshot* const* threads_ = nullptr;
  size_t thread_count_ = 0;
  const siginfo_t* siginfo_ = nullptr;
  uint64_t copy_start_ = 0;
  const uint8_t* copy_data_ = nullptr;
  size_t copy_size_ = 0;
};

}  // namespace cppdiag::dump
