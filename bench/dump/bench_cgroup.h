// Shared by the dump benchmarks: a v1 memory cgroup (no limit) holding the
// benchmark process, to see what a dump charges, page cache included; or one
// that only the tools it runs join (gdb, the cppdiag CLI), to see theirs apart.
#pragma once

#include <cstdint>
#include <string>

namespace cppdiag::bench {

class BenchCgroup {
 public:
  BenchCgroup() = default;
  ~BenchCgroup();  // moves the process back (if it joined) and removes the cgroup
  BenchCgroup(const BenchCgroup&) = delete;
  BenchCgroup& operator=(const BenchCgroup&) = delete;

  // Creates the cgroup and moves this process into it; false (with a line on
  // stderr) without a v1 memory controller.
  bool Create(const char* name);
  // The same, without joining it: children join it themselves (procs_path()).
  bool CreateForChildren(const char* name);
  // The cgroup.procs file a process writes its pid into to join.
  std::string procs_path() const { return dir_ + "/cgroup.procs"; }
  bool active() const { return !dir_.empty(); }
  uint64_t Usage() const;
  void ResetPeak() const;
  uint64_t Peak() const;
  // Drops this cgroup's page cache, so each measurement starts alike.
  void DropCache() const;

 private:
  bool Make(const char* name, bool join);
  uint64_t Read(const char* file) const;
  std::string parent_, dir_;
  bool joined_ = false;
};

// "12.3 MiB".
std::string Mib(uint64_t bytes);

}  // namespace cppdiag::bench
