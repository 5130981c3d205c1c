// cppdiag monitor: watch a process and dump it when a trigger fires, as
// ProcDump does, with its documented meanings: -s is how many consecutive
// seconds a condition must hold, memory is the process's RSS or its cgroup's
// usage against the cgroup's limit (what the OOM killer follows). A target
// with libcppdiag is dumped through its socket (it writes the dump, where it
// writes dumps); any other with ptrace (`dump collect --ptrace`).
//
// The skeleton of issue 12: -p only, triggers --memory, --cgroup-memory,
// --threads, --fds, polled every --poll.
#include <dirent.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/discovery.h"
#include "cli/display.h"
#include "cli/dump_request.h"
#include "cli/options.h"
#include "cli/ptrace_collect.h"
#include "common/cgroup.h"
#include "common/parse.h"
#include "common/proc.h"

namespace cppdiag::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct MonitorOptions {
  int pid = 0;
  std::vector<std::string> memory;  // sizes, each fired once, in ascending order
  std::optional<double> cgroup_pct;
  std::optional<int64_t> threads;
  std::optional<int64_t> fds;
  int count = 1;
  bool count_given = false;
  double sustain_s = 0;
  std::chrono::nanoseconds cooldown{0};
  std::chrono::nanoseconds poll = std::chrono::milliseconds(100);
  std::string dir;
  std::string type;
};

std::atomic<bool> g_stop{false};
void OnStop(int) { g_stop.store(true); }

// What one poll reads of the target; nullopt where unknown.
struct Sample {
  bool alive = false;
  std::optional<double> rss, threads, fds, cgroup_pct;
};

std::optional<double> CountFds(pid_t pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (d == nullptr) return std::nullopt;
  double n = 0;
  while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n;
}

Sample Read(pid_t pid, bool want_cgroup) {
  Sample s;
  auto status = ReadProcStatus(pid);
  if (!status) return s;
  s.alive = true;
  s.rss = static_cast<double>(status->vm_rss_bytes);
  s.threads = status->threads;
  s.fds = CountFds(pid);
  if (want_cgroup) {
    auto cg = CgroupReader().ReadMemory(pid);
    if (cg && cg->limit_bytes && *cg->limit_bytes > 0)
      s.cgroup_pct = 100.0 * static_cast<double>(cg->usage_bytes) / *cg->limit_bytes;
  }
  return s;
}

// One trigger: a value of the sample that fires at or over its threshold.
struct Trigger {
  std::string name;
  std::optional<double> Sample::*field;
  std::vector<double> thresholds;  // fired in turn (--memory's list); one for the others
  size_t next = 0;
  std::optional<Clock::time_point> holding_since;

  bool done() const { return next >= thresholds.size(); }
  std::string Show(double v) const {
    if (name == "memory") return FormatBytes(static_cast<uint64_t>(v));
    char buf[32];
    std::snprintf(buf, sizeof buf, name == "cgroup-memory" ? "%.1f%%" : "%.0f", v);
    return buf;
  }
};

std::string UtcNow() {
  time_t t = ::time(nullptr);
  tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Dumps the target, through its socket when it has one. Returns the path, or
// an error already printed. `index` numbers the dumps of this monitor (in
// the file name: two in one second must not collide).
std::optional<std::string> DumpOnce(const MonitorOptions& o, const std::string& trigger,
                                    int index) {
  std::string name;
  if (!o.dir.empty()) {
    auto stat = ReadProcStat(o.pid);
    name = o.dir + "/core." + (stat ? stat->comm : "process") + "." + std::to_string(o.pid) + "." +
           std::to_string(::time(nullptr)) + "." + trigger + "." + std::to_string(index);
  }
  if (auto target = FindTarget(o.pid)) {
    auto dump = RequestDump(*target, {.path = name, .type = o.type});
    if (!dump) {
      Fail(dump.error().message());
      return std::nullopt;
    }
    return dump->path;
  }
  std::string written;
  if (CollectWithPtrace(
          {.pid = o.pid, .output = name.empty() ? "" : name, .type = o.type, .cancel = &g_stop},
          &written) != 0) {
    return std::nullopt;
  }
  return written;
}

int Monitor(MonitorOptions o) {
  std::vector<Trigger> triggers;
  if (!o.memory.empty()) {
    Trigger t{"memory", &Sample::rss, {}};
    for (const std::string& text : o.memory) {
      auto size = ParseSize(text);
      if (!size) return Fail("--memory: " + size.error().message());
      t.thresholds.push_back(static_cast<double>(*size));
    }
    std::sort(t.thresholds.begin(), t.thresholds.end());
    triggers.push_back(t);
  }
  if (o.cgroup_pct) triggers.push_back({"cgroup-memory", &Sample::cgroup_pct, {*o.cgroup_pct}});
  if (o.threads) triggers.push_back({"threads", &Sample::threads, {double(*o.threads)}});
  if (o.fds) triggers.push_back({"fds", &Sample::fds, {double(*o.fds)}});
  if (triggers.empty())
    return Fail("no trigger: give --memory, --cgroup-memory, --threads or --fds");
  int wanted = o.count;
  if (!o.count_given && !o.memory.empty()) wanted = static_cast<int>(o.memory.size());
  if (!Read(o.pid, false).alive)
    return Fail("process " + std::to_string(o.pid) + " does not exist");

  struct sigaction sa {};
  sa.sa_handler = OnStop;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  std::printf("Monitoring process %d: %d dump%s wanted\n", o.pid, wanted, wanted == 1 ? "" : "s");
  std::fflush(stdout);

  int written = 0, attempts = 0;
  std::string why = "interrupted";
  Clock::time_point quiet_until = Clock::now();
  const auto sustain = std::chrono::duration<double>(o.sustain_s);
  while (!g_stop.load() && written < wanted) {
    Sample s = Read(o.pid, o.cgroup_pct.has_value());
    if (!s.alive) {
      why = "the target exited";
      break;
    }
    const auto now = Clock::now();
    for (Trigger& t : triggers) {
      if (t.done() || written >= wanted) continue;
      std::optional<double> v = s.*t.field;
      if (!v || *v < t.thresholds[t.next]) {
        t.holding_since.reset();
        continue;
      }
      if (!t.holding_since) t.holding_since = now;
      if (now - *t.holding_since < sustain || now < quiet_until) continue;
      auto path = DumpOnce(o, t.name, ++attempts);
      if (g_stop.load()) break;
      if (path) {
        ++written;
        std::printf("%s %s %s >= %s %s\n", UtcNow().c_str(), t.name.c_str(), t.Show(*v).c_str(),
                    t.Show(t.thresholds[t.next]).c_str(), ForTerminal(*path).c_str());
        std::fflush(stdout);
      }
      ++t.next;
      t.holding_since.reset();
      quiet_until = Clock::now() + o.cooldown;
    }
    bool all_done = true;
    for (const Trigger& t : triggers) all_done = all_done && t.done();
    if (all_done && written < wanted) {
      why = "every trigger has fired";
      break;
    }
    timespec ts{static_cast<time_t>(o.poll.count() / 1'000'000'000),
                static_cast<long>(o.poll.count() % 1'000'000'000)};
    ::nanosleep(&ts, nullptr);
  }
  if (written == wanted) return 0;
  return Fail("stopped with " + std::to_string(written) + " of " + std::to_string(wanted) +
              " dumps written: " + why);
}

}  // namespace

void AddMonitorCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<MonitorOptions>();
  auto* cmd = app.add_subcommand(
      "monitor", "Dump a process when a trigger fires (ProcDump-style), via its socket or ptrace");
  cmd->add_option("-p,--process-id", o->pid, "Target process id")->required();
  cmd->add_option("--memory", o->memory,
                  "RSS sizes (512M,1G): one dump as RSS reaches each, in turn")
      ->delimiter(',');
  cmd->add_option("--cgroup-memory", o->cgroup_pct,
                  "Dump when the target's memory cgroup usage reaches PCT of its limit")
      ->check(CLI::Range(1.0, 100.0));
  cmd->add_option("--threads", o->threads, "Dump when the thread count reaches N")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--fds", o->fds, "Dump when the open descriptor count reaches N")
      ->check(CLI::PositiveNumber);
  auto* n = cmd->add_option("-n,--count", o->count,
                            "Dumps to write before exiting (default 1, or one per --memory size)")
                ->check(CLI::PositiveNumber);
  cmd->add_option("-s,--seconds", o->sustain_s,
                  "Consecutive seconds a condition must hold before a dump (default 0)")
      ->check(CLI::NonNegativeNumber);
  AddDurationOption(cmd, "--cooldown", &o->cooldown, "Quiet time after a dump", Zero::kAllowed);
  AddDurationOption(cmd, "--poll", &o->poll, "Time between samples", Zero::kRefused);
  cmd->add_option("-o,--output-dir", o->dir,
                  "Directory of the dumps (the target's for a socket dump; default: the "
                  "target's CPPDIAG_DUMP_NAME, or here with ptrace)");
  AddDumpTypeOption(cmd, &o->type);
  cmd->callback([o, n, exit_code] {
    o->count_given = n->count() > 0;
    *exit_code = Monitor(*o);
  });
}

}  // namespace cppdiag::cli
