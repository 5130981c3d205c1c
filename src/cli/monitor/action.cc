#include "cli/monitor/action.h"

#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "cli/discovery.h"
#include "cli/dump_request.h"
#include "cli/heap_snapshot_request.h"
#include "cli/monitor/firing_line.h"
#include "common/io.h"
#include "common/parse.h"
#include "diag/dump/dump_type.h"
#include "diag/dump/ptrace_dump.h"

namespace cppdiag::cli::monitor {
namespace {

// <dir>/core.<comm>.<pid>.<unix time>.<trigger>.<n>, or "" (the default name).
std::string DumpName(const ActionTarget& t, const Firing& f, const MonitorOptions& o) {
  if (o.dir.empty()) return "";
  return o.dir + "/core." + (t.comm.empty() ? "process" : t.comm) + "." + std::to_string(t.pid) +
         "." + std::to_string(::time(nullptr)) + "." + f.trigger + "." + std::to_string(t.index);
}

Result<ActionDone> PtraceDump(const ActionTarget& t, const Firing& f, const MonitorOptions& o,
                              const std::atomic<bool>* stop) {
  dump::PtraceDumpOptions d;
  d.pid = t.pid;
  d.path = DumpName(t, f, o);
  if (!o.type.empty()) {
    auto type = ParseDumpType(o.type);
    if (!type) return type.error();
    d.type = *type;
  }
  d.cancel = stop;
  d.adopted = t.adopted;
  d.reason = "monitor: " + f.trigger + (f.value.empty() ? "" : " " + f.value);
  CPPDIAG_ASSIGN_OR_RETURN(dump::PtraceDumpReport r, dump::WritePtraceDump(d));
  char detail[160];
  std::snprintf(detail, sizeof detail, "%s, %s, target paused %.1f ms, %s", DumpTypeName(d.type),
                FormatBytes(r.size_bytes).c_str(), r.pause_ms, r.mode.c_str());
  return ActionDone{r.path, detail};
}

// --action heap-snapshot: the target's sampled live heap over its socket,
// written here as <dir>/heap.<comm>.<pid>.<unix time>.<trigger>.<n>.pb.gz.
Result<ActionDone> HeapSnapshot(const ActionTarget& t, const Firing& f, const MonitorOptions& o) {
  const std::string path = (o.dir.empty() ? std::string(".") : o.dir) + "/heap." +
                           (t.comm.empty() ? "process" : t.comm) + "." + std::to_string(t.pid) +
                           "." + std::to_string(::time(nullptr)) + "." + f.trigger + "." +
                           std::to_string(t.index) + ".pb.gz";
  CPPDIAG_RETURN_IF_ERROR(HasLibcppdiag(t.pid));
  CPPDIAG_ASSIGN_OR_RETURN(HeapSnapshotDone done, TakeHeapSnapshot(t.pid, path, false));
  char detail[160];
  std::snprintf(detail, sizeof detail, "heap snapshot, %zu stacks, live heap %s, by the target",
                done.stacks,
                FormatBytes(static_cast<uint64_t>(std::max(done.live_bytes, 0.0))).c_str());
  return ActionDone{path, detail};
}

}  // namespace

Result<void> HasLibcppdiag(pid_t pid) {
  auto target = FindTarget(pid);
  if (target) return {};
  return Error(
      target.error().code(), "",
      "--action heap-snapshot needs libcppdiag in the target: " + target.error().message());
}

Result<ActionDone> WriteDump(const ActionTarget& t, const Firing& f, const MonitorOptions& o,
                             const std::atomic<bool>* stop) {
  if (o.action == "heap-snapshot") return HeapSnapshot(t, f, o);
  if (!t.adopted.empty()) return PtraceDump(t, f, o, stop);
  if (auto target = FindTarget(t.pid)) {
    CPPDIAG_ASSIGN_OR_RETURN(DumpOutcome dump, RequestDump(*target, {.path = DumpName(t, f, o),
                                                                     .type = o.type,
                                                                     .quiet = true,
                                                                     .trigger = FiringText(f)}));
    char detail[160];
    std::snprintf(detail, sizeof detail, "%s, %s, threads paused %.1f ms, %s, by the target",
                  dump.type.c_str(), FormatBytes(dump.bytes).c_str(), dump.pause_ms,
                  dump.mode.c_str());
    return ActionDone{dump.path, detail};
  }
  return PtraceDump(t, f, o, stop);
}

Result<std::vector<std::string>> SplitCommand(const std::string& command) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < command.size(); ++i) {
    char c = command[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < command.size()) {
        word += command[++i];
      } else {
        word += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < command.size()) {
      word += command[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quote != 0)
    return Error(EINVAL, "", "--action exec: unterminated quote in '" + command + "'");
  if (in_word) words.push_back(word);
  if (words.empty()) return Error(EINVAL, "", "--action exec: no command");
  return words;
}

Result<std::string> RunExecAction(const std::string& command, const std::string& path,
                                  const Firing& f, pid_t pid, bool* succeeded,
                                  const std::atomic<bool>* stop) {
  *succeeded = false;
  CPPDIAG_ASSIGN_OR_RETURN(std::vector<std::string> words, SplitCommand(command));
  bool placed = false;
  for (std::string& w : words) {
    for (size_t at = w.find("{}"); at != std::string::npos; at = w.find("{}", at + path.size())) {
      w.replace(at, 2, path);  // searched on after the path, which may hold "{}" itself
      placed = true;
    }
  }
  if (!placed) words.push_back(path);
  std::vector<char*> argv;
  argv.reserve(words.size() + 1);
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = {"CPPDIAG_DUMP_PATH=" + path,
                                          "CPPDIAG_TRIGGER=" + f.trigger,
                                          "CPPDIAG_PID=" + std::to_string(pid)};
  std::vector<char*> envp;
  size_t env_count = 0;
  while (environ[env_count] != nullptr) ++env_count;
  envp.reserve(env_strings.size() + env_count + 1);
  for (std::string& e : env_strings) envp.push_back(e.data());
  for (size_t i = 0; i < env_count; ++i) envp.push_back(environ[i]);
  envp.push_back(nullptr);
  // The monitor's signal handlers and mask are not the command's.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t child = 0;
  int err = ::posix_spawnp(&child, argv[0], nullptr, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  if (err != 0) return Error(err, "posix_spawnp", words[0]);
  int status = 0;
  bool terminated = false;
  for (;;) {  // polled: a worker of the monitor waits here, and Ctrl-C must reach the command
    pid_t r = HANDLE_EINTR(::waitpid(child, &status, WNOHANG));
    if (r == child) break;
    if (r != 0) return Error::FromErrno("waitpid", words[0]);
    if (stop != nullptr && stop->load() && !terminated) {
      (void)::kill(child, SIGTERM);
      terminated = true;
    }
    timespec ts{0, 20000000};  // 20 ms
    ::nanosleep(&ts, nullptr);
  }
  if (WIFEXITED(status)) {
    *succeeded = WEXITSTATUS(status) == 0;
    return "exit status " + std::to_string(WEXITSTATUS(status));
  }
  const char* name = ::sigabbrev_np(WTERMSIG(status));
  return "killed by " + (name != nullptr ? std::string("SIG") + name
                                         : "signal " + std::to_string(WTERMSIG(status)));
}

}  // namespace cppdiag::cli::monitor
