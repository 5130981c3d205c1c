#include "common/cgroup.h"

#include <sstream>
#include <vector>

#include "common/io.h"
#include "common/parse.h"

namespace cppdiag {
namespace {

// v1 reports "no limit" as PAGE_COUNTER_MAX pages, rounded to the page size.
constexpr uint64_t kV1Unlimited = 0x7FFFFFFFFFFFF000ULL;

struct Mount {
  std::string root;  // the directory of the hierarchy shown at the mount point
  std::string mount_point;
};

// Undoes mountinfo's octal escapes ("\040" for a space); a malformed escape
// stays as it is.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    bool octal = s[i] == '\\' && i + 3 < s.size();
    int v = 0;
    for (size_t k = 1; octal && k <= 3; ++k) {
      char c = i + k < s.size() ? s[i + k] : 'x';
      octal = c >= '0' && c <= '7';
      v = v * 8 + (c - '0');
    }
    if (octal) {
      out += static_cast<char>(v);
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Finds the cgroup2 mount, or the cgroup (v1) mount whose super options hold
// `controller`.
std::optional<Mount> FindMount(const std::string& mountinfo, int version,
                               const std::string& controller) {
  std::istringstream in(mountinfo);
  std::string line;
  while (std::getline(in, line)) {
    // id parent maj:min root mount-point options [optional...] - fstype source super-options
    size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream head(line.substr(0, sep));
    std::istringstream tail(line.substr(sep + 3));
    std::string id, parent, dev, root, point, fstype, source, super;
    head >> id >> parent >> dev >> root >> point;
    tail >> fstype >> source >> super;
    if (version == 2 && fstype == "cgroup2") return Mount{Unescape(root), Unescape(point)};
    if (version == 1 && fstype == "cgroup") {
      std::istringstream opts(super);
      std::string opt;
      while (std::getline(opts, opt, ',')) {
        if (opt == controller) return Mount{Unescape(root), Unescape(point)};
      }
    }
  }
  return std::nullopt;
}

// Where `path` (as /proc/<pid>/cgroup gives it) is under the mount point;
// nullopt when the mount does not show it. `own_path` is this process's
// path in the same hierarchy: a container without a cgroup namespace sees
// the host's path for itself but its own cgroup mounted at the mount point,
// so its own path (and only its own: a sidecar's view holds none of the app
// container's cgroup) maps to the mount point.
std::optional<std::string> MapToMount(const Mount& m, const std::string& path,
                                      const std::string& own_path) {
  if (m.root == "/") return m.mount_point + (path == "/" ? "" : path);
  if (path == m.root) return m.mount_point;
  if (path.starts_with(m.root + "/")) return m.mount_point + path.substr(m.root.size());
  if (path == own_path) return m.mount_point;
  return std::nullopt;
}

std::optional<uint64_t> ReadNumberFile(const std::string& path) {
  auto text = ReadFileToString(path, 4096);
  if (!text) return std::nullopt;
  std::string s = *text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s == "max") return UINT64_MAX;
  auto n = ParseInt(s, 0, INT64_MAX);
  if (!n) return std::nullopt;
  return static_cast<uint64_t>(*n);
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::optional<uint64_t> StatValue(const std::string& stat, const std::string& key) {
  std::istringstream in(stat);
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::string Who(pid_t pid) { return pid == 0 ? "self" : std::to_string(pid); }

}  // namespace

Result<std::pair<int, std::string>> CgroupReader::FindMemoryCgroup(pid_t pid) const {
  CPPDIAG_ASSIGN_OR_RETURN(Found found, Find(pid, "memory"));
  if (found.version == 1) return std::pair{1, found.dir};
  // Without the memory controller (a hybrid host) the hierarchy has no memory files.
  if (ReadNumberFile(found.dir + "/memory.current") ||
      ReadFileToString(found.dir + "/memory.stat", 1 << 20)) {
    return std::pair{2, found.dir};
  }
  return Error(ENOENT, "find memory cgroup", "of process " + Who(pid));
}

// The v1 hierarchy of `controller` when this process is in one, else the v2
// hierarchy (whose files the caller checks).
Result<CgroupReader::Found> CgroupReader::Find(pid_t pid, const std::string& controller) const {
  CPPDIAG_ASSIGN_OR_RETURN(Paths paths, ReadPaths(pid, controller));
  Paths own = paths;
  if (pid != 0) {
    CPPDIAG_ASSIGN_OR_RETURN(own, ReadPaths(0, controller));
  }
  CPPDIAG_ASSIGN_OR_RETURN(std::string mountinfo, ReadFileToString(root_ + "/proc/self/mountinfo"));
  auto found = [&](int version, const Mount& m, const std::string& path,
                   const std::string& own_path) -> Result<Found> {
    auto dir = MapToMount(m, path, own_path);
    if (!dir) {
      return Error(EXDEV, "find " + controller + " cgroup",
                   "of process " + Who(pid) + ": its cgroup " + path +
                       " is not visible here (this mount of the hierarchy shows " + m.root +
                       " only, as a container's does)");
    }
    return Found{version, root_ + *dir, root_ + m.mount_point};
  };
  if (paths.have_v1) {
    if (auto m = FindMount(mountinfo, 1, controller)) return found(1, *m, paths.v1, own.v1);
  }
  if (paths.have_v2) {
    if (auto m = FindMount(mountinfo, 2, "")) return found(2, *m, paths.v2, own.v2);
  }
  return Error(ENOENT, "find " + controller + " cgroup", "of process " + Who(pid));
}

// The process's paths in the v1 hierarchy of `controller` and in v2.
Result<CgroupReader::Paths> CgroupReader::ReadPaths(pid_t pid,
                                                    const std::string& controller) const {
  CPPDIAG_ASSIGN_OR_RETURN(std::string cgroups,
                           ReadFileToString(root_ + "/proc/" + Who(pid) + "/cgroup"));
  Paths p;
  std::istringstream in(cgroups);
  std::string line;
  while (std::getline(in, line)) {
    // hierarchy-id:controller-list:path
    size_t a = line.find(':');
    size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (line.substr(0, a) == "0" && controllers.empty()) {
      p.v2 = path;
      p.have_v2 = true;
    }
    std::istringstream cs(controllers);
    std::string c;
    while (std::getline(cs, c, ',')) {
      if (c == controller) {
        p.v1 = path;
        p.have_v1 = true;
      }
    }
  }
  return p;
}

Result<uint64_t> CgroupReader::ReadUsage(int version, const std::string& dir) const {
  std::string file = dir + (version == 1 ? "/memory.usage_in_bytes" : "/memory.current");
  auto v = ReadNumberFile(file);
  if (!v) return Error::FromErrno("read", file);
  return *v;
}

Result<CgroupMemory> CgroupReader::ReadMemory(pid_t pid) const {
  CPPDIAG_ASSIGN_OR_RETURN(auto found, FindMemoryCgroup(pid));
  CgroupMemory mem;
  mem.version = found.first;
  mem.dir = found.second;
  auto usage = ReadUsage(mem.version, mem.dir);
  if (usage) {
    mem.usage_bytes = *usage;
  } else if (mem.version == 2) {
    // The v2 root cgroup has no memory.current: sum what memory.stat reports.
    auto stat = ReadFileToString(mem.dir + "/memory.stat", 1 << 20);
    if (!stat) return usage.error();
    mem.usage_bytes = StatValue(*stat, "anon").value_or(0) + StatValue(*stat, "file").value_or(0) +
                      StatValue(*stat, "kernel").value_or(0);
  } else {
    return usage.error();
  }

  uint64_t limit = UINT64_MAX;
  if (mem.version == 1) {
    limit = ReadNumberFile(mem.dir + "/memory.limit_in_bytes").value_or(UINT64_MAX);
    // hierarchical_memory_limit folds in the ancestors' limits.
    if (auto stat = ReadFileToString(mem.dir + "/memory.stat", 1 << 20)) {
      limit = std::min(limit, StatValue(*stat, "hierarchical_memory_limit").value_or(UINT64_MAX));
    }
    if (limit >= kV1Unlimited) limit = UINT64_MAX;
  } else {
    // Walk up while the directory is inside the cgroup filesystem.
    std::string dir = mem.dir;
    for (;;) {
      if (auto v = ReadNumberFile(dir + "/memory.max")) limit = std::min(limit, *v);
      size_t slash = dir.rfind('/');
      if (slash == std::string::npos || slash == 0) break;
      std::string up = dir.substr(0, slash);
      if (!ReadFileToString(up + "/cgroup.controllers", 4096)) break;
      dir = up;
    }
  }
  if (limit != UINT64_MAX) mem.limit_bytes = limit;
  return mem;
}

Result<std::pair<std::optional<uint64_t>, uint64_t>> ParseCpuMax(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string quota, period, extra;
  in >> quota >> period;
  auto bad = [&] { return Error::Invalid("malformed cpu.max: \"" + std::string(text) + "\""); };
  if (quota.empty() || (in >> extra)) return bad();
  uint64_t period_us = 100000;  // the kernel's default when only the quota is written
  if (!period.empty()) {
    auto p = ParseInt(period, 1, INT64_MAX);
    if (!p) return bad();
    period_us = static_cast<uint64_t>(*p);
  }
  if (quota == "max") return std::pair{std::optional<uint64_t>(), period_us};
  auto q = ParseInt(quota, 1, INT64_MAX);
  if (!q) return bad();
  return std::pair{std::optional<uint64_t>(static_cast<uint64_t>(*q)), period_us};
}

Result<CgroupCpu> CgroupReader::ReadCpu(pid_t pid) const {
  CPPDIAG_ASSIGN_OR_RETURN(Found found, Find(pid, "cpu"));
  CgroupCpu cpu;
  cpu.version = found.version;
  cpu.dir = found.dir;
  // A child cannot use more than its ancestors allow: the smallest quota up
  // the tree applies.
  std::string dir = found.dir;
  for (;;) {
    std::optional<uint64_t> quota;
    uint64_t period = 0;
    if (found.version == 1) {
      auto q = ReadFileToString(dir + "/cpu.cfs_quota_us", 4096);
      auto p = ReadNumberFile(dir + "/cpu.cfs_period_us");
      if (q && p && *p > 0) {
        auto n = ParseInt(Trim(*q), -1, INT64_MAX);  // -1: no quota
        if (n && *n > 0) quota = static_cast<uint64_t>(*n);
        period = *p;
      }
    } else if (auto text = ReadFileToString(dir + "/cpu.max", 4096)) {
      if (auto parsed = ParseCpuMax(Trim(*text))) {
        quota = parsed->first;
        period = parsed->second;
      }
    }
    if (quota) {
      double cores = static_cast<double>(*quota) / static_cast<double>(period);
      if (!cpu.quota_cores || cores < *cpu.quota_cores) {
        cpu.quota_cores = cores;
        cpu.quota_us = *quota;
        cpu.period_us = period;
      }
    }
    if (dir.size() <= found.mount_point.size()) break;
    size_t slash = dir.rfind('/');
    if (slash == std::string::npos || slash < found.mount_point.size()) break;
    std::string up = dir.substr(0, slash);
    if (found.version == 2 && !ReadFileToString(up + "/cgroup.controllers", 4096)) break;
    dir = up;
  }
  return cpu;
}

}  // namespace cppdiag
