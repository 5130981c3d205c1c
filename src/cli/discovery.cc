#include "cli/discovery.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "common/io.h"
#include "common/proc.h"
#include "diag/ipc/protocol.h"

namespace cppdiag::cli {
namespace {

// The innermost pid of NSpid in /proc/<pid>/status: the pid the process sees.
pid_t NamespacePid(pid_t pid, const std::string& proc_root) {
  auto text = ReadFileToString(proc_root + "/" + std::to_string(pid) + "/status");
  if (!text) return pid;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("NSpid:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    pid_t last = pid, v;
    while (fields >> v) last = v;
    return last;
  }
  return pid;
}

bool IsSocket(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

std::vector<std::string> Components(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(path);
  std::string c;
  while (std::getline(in, c, '/')) {
    if (!c.empty() && c != ".") out.push_back(c);
  }
  return out;
}

// `path` (as the target sees it) under `root` ("/proc/<pid>/root"), with its
// symbolic links resolved in the target's filesystem. Walking
// "/proc/<pid>/root/tmp/..." directly would resolve an absolute link (say
// /tmp -> /var/tmp) against this tool's root, not the target's.
std::string ResolveInRoot(const std::string& root, const std::string& path) {
  std::vector<std::string> todo = Components(path);
  std::reverse(todo.begin(), todo.end());
  std::string done;  // resolved so far, below root: "" or "/a/b"
  for (int links = 0; !todo.empty();) {
    std::string c = std::move(todo.back());
    todo.pop_back();
    if (c == "..") {
      done.erase(done.empty() ? 0 : done.rfind('/'));
      continue;
    }
    char target[PATH_MAX];
    std::string here = root;
    here += done;
    here += '/';
    here += c;
    ssize_t n = ::readlink(here.c_str(), target, sizeof target - 1);
    if (n <= 0) {  // not a link (or nothing there): taken as it is
      done += "/" + c;
      continue;
    }
    if (++links > 40) return root + path;  // a loop: let the caller fail on it
    std::string link(target, static_cast<size_t>(n));
    if (link.front() == '/') done.clear();
    std::vector<std::string> more = Components(link);
    todo.insert(todo.end(), more.rbegin(), more.rend());
  }
  return root + done;
}

// Abstract sockets of this network namespace listed in /proc/net/unix.
bool AbstractSocketExists(const std::string& name, const std::string& proc_root) {
  auto table = ReadFileToString(proc_root + "/net/unix", 16 << 20);
  return table && table->find(" @" + name + "\n") != std::string::npos;
}

Result<DiagTarget> Probe(pid_t pid, const std::string& proc_root) {
  CPPDIAG_ASSIGN_OR_RETURN(ProcStat stat, ReadProcStat(pid, proc_root));
  DiagTarget t;
  t.pid = pid;
  t.ns_pid = NamespacePid(pid, proc_root);
  t.name = stat.comm;
  if (auto argv = ReadCmdline(pid, proc_root); argv && !argv->empty()) {
    t.argv = std::move(*argv);
    for (const auto& a : t.argv) t.command_line += (t.command_line.empty() ? "" : " ") + a;
  }
  std::string name = ipc::SocketName(t.ns_pid, stat.start_time_ticks);
  std::string tmpdir = "/tmp";
  auto env = ReadEnviron(pid, proc_root);
  if (env) {
    if (auto it = env->find("TMPDIR"); it != env->end() && !it->second.empty()) tmpdir = it->second;
  }
  std::string path =
      ResolveInRoot(proc_root + "/" + std::to_string(pid) + "/root", tmpdir) + "/" + name;
  if (IsSocket(path)) {
    t.endpoint.path = path;
    t.endpoint.expected_pid = pid;
    return t;
  }
  if (AbstractSocketExists(name, proc_root)) {
    t.endpoint.abstract_name = name;
    t.endpoint.expected_pid = pid;
    return t;
  }
  if (!env && env.error().code() == EACCES) {
    return Error(EACCES, "",
                 "process " + std::to_string(pid) +
                     ": cannot read its environment or root: permission denied (another user's "
                     "process, or not dumpable)");
  }
  return Error(ENOENT, "",
               "process " + std::to_string(pid) + " (" + t.name +
                   ") has no diagnostic socket: is libcppdiag linked or preloaded, "
                   "with CPPDIAG_ENABLE_DIAGNOSTICS=1?");
}

}  // namespace

std::vector<DiagTarget> FindTargets(const std::string& proc_root, int* unreadable) {
  std::vector<DiagTarget> out;
  if (unreadable != nullptr) *unreadable = 0;
  auto pids = ListPids(proc_root);
  if (!pids) return out;
  for (pid_t pid : *pids) {
    if (pid == ::getpid()) continue;
    if (auto t = Probe(pid, proc_root)) {
      out.push_back(std::move(*t));
    } else if (unreadable != nullptr && t.error().code() == EACCES) {
      ++*unreadable;
    }
  }
  return out;
}

Result<DiagTarget> FindTarget(pid_t pid, const std::string& proc_root) {
  if (::access((proc_root + "/" + std::to_string(pid)).c_str(), F_OK) != 0) {
    return Error(ESRCH, "", "no process " + std::to_string(pid) + " in this PID namespace");
  }
  return Probe(pid, proc_root);
}

}  // namespace cppdiag::cli
