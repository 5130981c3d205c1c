// Which processes `cppdiag monitor` watches with -w NAME or --pgid PGID:
// each scan of /proc returns the processes that match and were not
// returned before, each keyed by its pid and start time (a pid reused by
// another process is a new target). NAME matches a process whose comm
// (the kernel's 15-byte name) or argv[0]'s basename is NAME; PGID every
// process of that process group. The monitor's own process never matches.
//
//   TargetSet set(TargetSet::Matcher::Name("leakapp"));
//   for (const TargetSet::Found& p : set.Scan()) ... watch p.pid;
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace cppdiag::cli::monitor {

class TargetSet {
 public:
  struct Matcher {
    std::string name;  // -w: "" when by group
    pid_t pgid = 0;    // --pgid: 0 when by name
    static Matcher Name(std::string n) { return {std::move(n), 0}; }
    static Matcher Group(pid_t g) { return {"", g}; }
  };
  struct Found {
    pid_t pid = 0;
    uint64_t start_ticks = 0;
    std::string comm;
  };

  explicit TargetSet(Matcher m, std::string proc_root = "/proc")
      : m_(std::move(m)), proc_root_(std::move(proc_root)) {}

  // The matching processes not returned by an earlier scan, by pid.
  std::vector<Found> Scan();

  // How many processes match now (after the last Scan): 0 means a --pgid
  // group has no process left.
  size_t matching_now() const { return matching_now_; }

  // What is being watched, for messages: "processes named leakapp".
  std::string Describe() const;

 private:
  bool NameMatches(pid_t pid, const std::string& comm) const;

  Matcher m_;
  std::string proc_root_;
  using OtherKey = std::tuple<pid_t, uint64_t, std::string>;  // pid, start time, comm
  std::set<std::pair<pid_t, uint64_t>> seen_;                 // returned already, still there
  std::set<OtherKey> not_match_;                              // by name: checked, another name
  size_t matching_now_ = 0;
};

// The process group of `pid` (field 5 of /proc/<pid>/stat), or -1.
pid_t ProcessGroupOf(pid_t pid, const std::string& proc_root = "/proc");

}  // namespace cppdiag::cli::monitor
