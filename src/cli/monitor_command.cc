// cppdiag monitor: watch a process and dump it when a trigger fires, as
// ProcDump does, with its documented meanings (-s is how many consecutive
// seconds a condition must hold). This file is the command line; the
// monitor itself is in cli/monitor/ (runner.h: the loop; triggers.h,
// sample.h: what is polled; action.h: what a firing does).
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/monitor/options.h"
#include "cli/monitor/runner.h"
#include "cli/options.h"

namespace cppdiag::cli {

void AddMonitorCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<monitor::MonitorOptions>();
  auto* cmd = app.add_subcommand(
      "monitor", "Dump a process when a trigger fires (ProcDump-style), via its socket or ptrace");
  auto* p = cmd->add_option("-p,--process-id", o->pid, "Target process id");
  auto* w = cmd->add_option("-w,--wait", o->wait_name,
                            "Watch every process named NAME (comm or argv[0]), as it appears");
  auto* g = cmd->add_option("--pgid", o->pgid, "Watch every process of process group PGID")
                ->check(CLI::PositiveNumber);
  p->excludes(w)->excludes(g);
  w->excludes(g);
  cmd->add_option("--memory", o->memory,
                  "RSS sizes (512M,1G): one dump as RSS reaches each, in turn")
      ->delimiter(',');
  cmd->add_option("--memory-below", o->memory_below, "Dump when RSS falls below SIZE");
  cmd->add_option("--cgroup-memory", o->cgroup_pct,
                  "Dump when the target's memory cgroup usage reaches PCT of its limit")
      ->check(CLI::Range(1.0, 100.0));
  cmd->add_option("--cpu", o->cpu_pct,
                  "Dump when CPU over the last second reaches PCT (% of one core)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--cpu-below", o->cpu_below_pct,
                  "Dump when CPU over the last second falls below PCT")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--of-quota", o->of_quota,
                "--cpu and --cpu-below in % of the cgroup's CPU quota, not of one core");
  cmd->add_option("--threads", o->threads, "Dump when the thread count reaches N")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--fds", o->fds, "Dump when the open descriptor count reaches N")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--signal", o->signals,
                  "Dump when the target receives a listed signal (SIGUSR1,TERM,...), then "
                  "deliver it (ptrace: the monitor is the target's tracer)")
      ->delimiter(',');
  cmd->add_flag("--exit", o->exit,
                "Dump when the target is about to die of a fatal signal or exits (ptrace "
                "PTRACE_O_TRACEEXIT); its exit status is unchanged");
  cmd->add_flag("--timer", o->timer,
                "Dump -n times, -s seconds apart (default 10), the first at once");
  auto* n = cmd->add_option("-n,--count", o->count,
                            "Dumps to write before exiting (default 1, or one per --memory size)")
                ->check(CLI::PositiveNumber);
  auto* s = cmd->add_option("-s,--seconds", o->seconds,
                            "Consecutive seconds a condition must hold before a dump (default 0)")
                ->check(CLI::NonNegativeNumber);
  AddDurationOption(cmd, "--cooldown", &o->cooldown, "Quiet time after a dump", Zero::kAllowed);
  AddDurationOption(cmd, "--poll", &o->poll, "Time between samples", Zero::kRefused);
  cmd->add_option("-o,--output-dir", o->dir,
                  "Directory of the dumps (the target's for a socket dump; default: the "
                  "target's CPPDIAG_DUMP_NAME, or here with ptrace)");
  AddDumpTypeOption(cmd, &o->type);
  cmd->add_option("--action", o->action,
                  "dump (default); heap-snapshot: the live heap (pprof) into -o DIR; or exec:CMD: "
                  "dump, then run CMD with the dump's path "
                  "(no shell; {} is the path, else it is the last argument)");
  cmd->callback([o, n, s, exit_code] {
    o->count_given = n->count() > 0;
    o->seconds_given = s->count() > 0;
    *exit_code = monitor::RunMonitor(*o);
  });
}

}  // namespace cppdiag::cli
