// A ProcessSnapshot made up by a test: mappings with chosen bytes, unreadable
// pages, page flags, threads and auxv. Allocates; not for the signal path.
//
//   FakeProcessSnapshot fake;
//   fake.AddMapping(0x10000, 0x4000, "rw-p", "[heap]");
//   fake.SetBytes(0x10000, "marker");
//   fake.AddThread(1234).regs.rsp = 0x10100;
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "diag/dump/process_snapshot.h"

namespace cppdiag::dump::testing {

class FakeProcessSnapshot : public ProcessSnapshot {
 public:
  FakeProcessSnapshot();

  // `perms` as in maps ("r-xp"); keep mappings in ascending order.
  MappingSnapshot& AddMapping(uint64_t start, uint64_t size, std::string_view perms,
                              std::string path = "", uint64_t offset = 0, uint64_t inode = 0);
  ThreadSnapshot& AddThread(pid_t tid);
  void SetBytes(uint64_t addr, std::string_view bytes);
  void SetBytes(uint64_t addr, const void* data, size_t len);
  // Fills [addr, addr+len) with `value` (the pages become present).
  void Fill(uint64_t addr, uint64_t len, uint8_t value);
  // Reads of these pages fail (EIO), as /proc/<pid>/mem does for some mappings.
  void SetUnreadable(uint64_t addr, uint64_t len);
  // Overrides QueryPages for one page. By default a written page is present
  // (and a page-cache page in a file mapping), an unwritten one is nothing.
  void SetPageFlags(uint64_t page, uint8_t flags) { page_flags_[page] = flags; }
  void DisablePageQueries() { page_queries_ = false; }
  void SetAuxv(std::vector<std::pair<uint64_t, uint64_t>> entries);
  void SetSiginfo(const siginfo_t& si) { siginfo_ = si; }

  ProcessInfo& info() { return info_; }
  // Number of ReadMemory calls so far (to check what the writer skips).
  size_t reads() const { return reads_; }

  const ProcessInfo& process() const override { return info_; }
  size_t thread_count() const override { return threads_.size(); }
  const ThreadSnapshot& thread(size_t i) const override { return *threads_[i]; }
  size_t mapping_count() const override { return mappings_.size(); }
  const MappingSnapshot& mapping(size_t i) const override { return *mappings_[i]; }
  std::span<const uint8_t> auxv() const override { return auxv_; }
  const siginfo_t* siginfo() const override { return siginfo_ ? &*siginfo_ : nullptr; }
  ssize_t ReadMemory(uint64_t addr, void* buf, size_t len) const override;
  int QueryPages(uint64_t addr, size_t npages, uint8_t* flags) const override;

 private:
  bool Readable(uint64_t page) const;

  ProcessInfo info_;
  std::vector<std::unique_ptr<ThreadSnapshot>> threads_;
  std::vector<std::unique_ptr<MappingSnapshot>> mappings_;
  std::vector<std::unique_ptr<std::string>> paths_;
  std::map<uint64_t, std::vector<uint8_t>> pages_;  // page address -> 4096 bytes
  std::set<uint64_t> unreadable_;
  std::map<uint64_t, uint8_t> page_flags_;
  std::vector<uint8_t> auxv_;
  std::optional<siginfo_t> siginfo_;
  bool page_queries_ = true;
  mutable size_t reads_ = 0;
};

}  // namespace cppdiag::dump::testing
