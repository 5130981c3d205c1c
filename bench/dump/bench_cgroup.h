// Shared by the dump benchmarks: a v1 memory cgroup (no limit) holding the
// benchmark process, to see what a dump charges, page cache included.
#pragma once

#include <cstdint>
#include <string>

namespace cppdiag::bench {

class BenchCgroup {
 public:
  BenchCgroup() = default;
  ~BenchCgroup();  // moves the process back and removes the cgroup
  BenchCgroup(const BenchCgroup&) = delete;
  BenchCgroup& operator=(const BenchCgroup&) = delete;

  // Creates the cgroup and moves this process into it; false (with a line on
  // stderr) without a v1 memory controller.
  bool Create(const char* name);
  bool active() const { return !dir_.empty(); }
  uint64_t Usage() const;
  void ResetPeak() const;
  uint64_t Peak() const;
  // Drops this cgroup's page cache, so each measurement starts alike.
  void DropCache() const;

 private:
  uint64_t Read(const char* file) const;
  std::string parent_, dir_;
};

// "12.3 MiB".
std::string Mib(uint64_t bytes);

}  // namespace cppdiag::bench
