// Readers for /proc/<pid>/{status,stat,maps,environ,cmdline}.
//
// Every reader takes a `proc_root` ("/proc" by default) so tests can point it
// at a fixture tree. ParseMapsLine allocates nothing and may be used from
// async-signal-safe code; the others allocate.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cppdiag {

inline constexpr const char* kProcRoot = "/proc";

struct ProcStatus {
  std::string name;
  pid_t pid = 0;
  pid_t ppid = 0;
  uid_t real_uid = 0;
  uid_t effective_uid = 0;
  int threads = 0;
  uint64_t vm_size_bytes = 0;
  uint64_t vm_rss_bytes = 0;
  uint64_t vm_hwm_bytes = 0;  // peak RSS
};
Result<ProcStatus> ReadProcStatus(pid_t pid, const std::string& proc_root = kProcRoot);
Result<ProcStatus> ParseProcStatus(std::string_view text);

struct ProcStat {
  pid_t pid = 0;
  std::string comm;
  char state = '?';
  pid_t ppid = 0;
  pid_t pgrp = 0;  // process group id
  uint64_t minor_faults = 0;
  uint64_t major_faults = 0;
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  int64_t num_threads = 0;
  uint64_t start_time_ticks = 0;  // since boot, in clock ticks: part of the socket name
  uint64_t vsize_bytes = 0;
  int64_t rss_pages = 0;
};
Result<ProcStat> ReadProcStat(pid_t pid, const std::string& proc_root = kProcRoot);
// Parses the one line of /proc/<pid>/stat; `comm` may hold spaces and ')'.
Result<ProcStat> ParseProcStat(std::string_view line);

// The fields of one line of /proc/<pid>/maps, less its path.
struct MappingRange {
  uint64_t start = 0;
  uint64_t end = 0;
  bool read = false, write = false, exec = false, shared = false;
  uint64_t offset = 0;
  unsigned dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  uint64_t size() const { return end - start; }
  bool contains(uint64_t addr) const { return addr >= start && addr < end; }
};

// One line of /proc/<pid>/maps, viewing the caller's buffer (no allocation).
struct MapsLine : MappingRange {
  std::string_view path;  // "" for anonymous, "[heap]", "[stack]", a file path...
};
// Async-signal-safe. Returns false on a malformed line.
bool ParseMapsLine(std::string_view line, MapsLine* out);

// One line of /proc/<pid>/maps that owns its path.
struct MemoryMapping : MappingRange {
  std::string path;
};
Result<std::vector<MemoryMapping>> ReadMaps(pid_t pid, const std::string& proc_root = kProcRoot);
Result<std::vector<MemoryMapping>> ParseMaps(std::string_view text);

// NAME=value pairs of /proc/<pid>/environ (as the process started).
Result<std::map<std::string, std::string>> ReadEnviron(pid_t pid,
                                                       const std::string& proc_root = kProcRoot);
// argv of /proc/<pid>/cmdline.
Result<std::vector<std::string>> ReadCmdline(pid_t pid, const std::string& proc_root = kProcRoot);

// Every numeric entry of /proc, ascending.
Result<std::vector<pid_t>> ListPids(const std::string& proc_root = kProcRoot);

// Thread ids of /proc/<pid>/task, ascending.
Result<std::vector<pid_t>> ListThreads(pid_t pid, const std::string& proc_root = kProcRoot);

}  // namespace cppdiag
