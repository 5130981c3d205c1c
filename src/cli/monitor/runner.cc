#include "cli/monitor/runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cli/display.h"
#include "cli/monitor/action.h"
#include "cli/monitor/cgroup_event.h"
#include "cli/monitor/dump_worker.h"
#include "cli/monitor/firing_line.h"
#include "cli/monitor/sample.h"
#include "cli/monitor/target_set.h"
#include "cli/monitor/traced.h"
#include "cli/monitor/triggers.h"
#include "common/io.h"
#include "common/proc.h"
#include "common/scoped_fd.h"

namespace cppdiag::cli::monitor {
namespace {

std::atomic<bool> g_stop{false};
int g_stop_pipe = -1;

int g_wake_pipe = -1;

// Firings run at once, each on its own worker (a bound on the threads and
// on the dumps' memory, with -w NAME matching many processes).
constexpr int kMaxFiringsAtOnce = 4;

void OnStop(int) {  // async-signal-safe: an atomic store and a write
  g_stop.store(true);
  char c = 1;
  if (g_stop_pipe >= 0) (void)!::write(g_stop_pipe, &c, 1);
}

void OnChild(int) {  // async-signal-safe: a write (a traced thread has a stop to report)
  char c = 1;
  if (g_wake_pipe >= 0) (void)!::write(g_wake_pipe, &c, 1);
}

// The least time between two samples that cgroup events cause: usage
// going up and down across the threshold cannot make the monitor spin
// (at 100 MiB/s, 5 ms is half a MiB).
constexpr auto kEventGap = std::chrono::milliseconds(5);

// Whether this process traces `pid`: the frozen copy-on-write child a
// worker's ptrace dump injected into a target (it has the target's name, and
// must not be watched as a new target of -w NAME or --pgid).
bool TracedByUs(pid_t pid) {
  auto status = ReadFileToString("/proc/" + std::to_string(pid) + "/status");
  size_t at = status ? status->find("\nTracerPid:") : std::string::npos;
  if (at == std::string::npos) return false;
  // TracerPid is the tracing thread's id: a worker's, one of ours.
  long tracer = std::strtol(status->c_str() + at + 11, nullptr, 10);
  return tracer != 0 && ::access(("/proc/self/task/" + std::to_string(tracer)).c_str(), F_OK) == 0;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "cppdiag: %s\n", ForTerminal(message).c_str());
  return 1;
}

// One process being watched.
struct Watched {
  pid_t pid = 0;
  uint64_t start_ticks = 0;
  std::string comm;
  std::unique_ptr<ProcessSampler> sampler;
  std::vector<PolledTrigger> triggers;
  size_t next_trigger = 0;  // the trigger whose turn it is in this pass
  int fired = 0;
  std::atomic<int> written{0};  // counted by the worker, read by the loop
  Clock::time_point quiet_until{};
  std::optional<Clock::time_point> next_timer;  // --timer: when the next dump is due
  bool gone = false;
  bool cgroup_problem_said = false;
  std::unique_ptr<TracedTarget> traced;  // --signal, --exit: the monitor is its tracer
  // --cgroup-memory on cgroup v1: wakes the loop as usage crosses the
  // threshold; null while polling. Closed (unregistered) once done.
  std::unique_ptr<CgroupThresholdEvent> cgroup_event;
  bool event_due = false;             // the event woke the loop: sample now
  Clock::time_point event_sampled{};  // the last sample an event caused
  // Where its firings run (not with `traced`: the session's tracer is the
  // main thread, and only the tracer may write the dump of its stopped
  // threads). While busy, the worker alone touches fired..quiet_until.
  DumpWorker worker;
};

class Monitor {
 public:
  explicit Monitor(const MonitorOptions& o) : o_(o) {}
  int Run();

 private:
  Result<std::unique_ptr<Watched>> Watch(pid_t pid);
  void Sample(Watched& w, Clock::time_point now);
  void Fire(Watched& w, const Firing& f, const TracedEvent* event = nullptr);
  void Act(Watched& w, const ActionTarget& t, const Firing& f);
  bool CanFire(const Watched& w) const;
  void PollTraced(Watched& w);
  bool Finished(const Watched& w) const {
    return !w.worker.busy() && (w.gone || w.written >= wanted_);
  }
  bool Wait(Clock::time_point until);
  void ArmCgroupEvent(Watched& w);
  bool Done(const Watched& w) const;
  void Join();
  bool SetDone();

  const MonitorOptions& o_;
  int wanted_ = 1;
  ScopedFd stop_read_, stop_write_, wake_read_, wake_write_;
  std::vector<std::unique_ptr<Watched>> watched_;
  std::optional<TargetSet> set_;  // -w, --pgid
  std::string why_ = "interrupted";
  bool polling_said_ = false;
  std::atomic<int> failed_actions_{0};
};

Result<std::unique_ptr<Watched>> Monitor::Watch(pid_t pid) {
  auto stat = ReadProcStat(pid);
  if (!stat || stat->state == 'Z' || stat->state == 'X') {
    return Error(ESRCH, "", "process " + std::to_string(pid) + " does not exist");
  }
  auto w = std::make_unique<Watched>();
  w->pid = pid;
  w->start_ticks = stat->start_time_ticks;
  w->comm = stat->comm;
  SamplerOptions so{.cgroup = o_.cgroup_pct.has_value(),
                    .cpu = o_.cpu_pct.has_value() || o_.cpu_below_pct.has_value(),
                    .of_quota = o_.of_quota,
                    .window = std::max<std::chrono::nanoseconds>(std::chrono::seconds(1), o_.poll)};
  w->sampler = std::make_unique<ProcessSampler>(pid, w->start_ticks, so);
  CPPDIAG_ASSIGN_OR_RETURN(w->triggers, BuildPolledTriggers(o_));
  return w;
}

// --cgroup-memory: the kernel's threshold notification where it exists;
// else the poll alone, said once for the whole run.
void Monitor::ArmCgroupEvent(Watched& w) {
  if (!o_.cgroup_pct) return;
  auto event = CgroupThresholdEvent::Arm(w.pid, *o_.cgroup_pct);
  if (event) {
    w.cgroup_event = std::move(*event);
    return;
  }
  if (polling_said_) return;
  polling_said_ = true;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(o_.poll).count();
  std::fprintf(stderr,
               "cppdiag: --cgroup-memory: process %d: no usage event (%s): polling every %lld ms\n",
               w.pid, ForTerminal(event.error().message()).c_str(), static_cast<long long>(ms));
}

void Monitor::Fire(Watched& w, const Firing& f, const TracedEvent* event) {
  ActionTarget t{.pid = w.pid, .comm = w.comm, .index = ++w.fired};
  if (!w.traced) {
    w.worker.Start([this, &w, t, f] { Act(w, t, f); },
                   [this] {
                     char c = 1;  // the loop looks at this target again now, not at its next poll
                     (void)!::write(wake_write_.get(), &c, 1);
                   });
    return;
  }
  // While the monitor is the tracer, every dump is a ptrace dump of the
  // threads the session stops (a polled trigger's too: tid 0 stops them all).
  const TracedEvent all{};
  t.adopted = w.traced->StopOthers(event != nullptr ? *event : all);
  Act(w, t, f);
  w.traced->Resume(event != nullptr ? *event : all);
}

// The dump of a firing, its line, and the --action command.
void Monitor::Act(Watched& w, const ActionTarget& t, const Firing& f) {
  auto done = WriteDump(t, f, o_, &g_stop);
  if (g_stop.load()) return;
  if (done) {
    ++w.written;
    PrintLine(FiringLine(w.pid, f, done->path, done->detail, ""));
    if (o_.action.rfind("exec:", 0) == 0) {
      bool ok = false;
      auto how = RunExecAction(o_.action.substr(5), done->path, f, w.pid, &ok, &g_stop);
      if (!ok) ++failed_actions_;
      PrintLine(UtcNow() + " " + std::to_string(w.pid) + " exec " +
                ForTerminal(o_.action.substr(5)) + ": " +
                ForTerminal(how ? *how : how.error().message()));
    }
  } else {
    PrintLine(FiringLine(w.pid, f, "", "", done.error().message()));
  }
  w.quiet_until = Clock::now() + o_.cooldown;
}

// Whether a firing of `w` may start now: none of its own is running, and
// fewer than kMaxFiringsAtOnce in all (else it fires at a later poll).
bool Monitor::CanFire(const Watched& w) const {
  if (w.traced) return true;
  if (w.worker.busy()) return false;
  int running = 0;
  for (const auto& other : watched_) running += other->worker.busy() ? 1 : 0;
  return running < kMaxFiringsAtOnce;
}

void Monitor::Sample(Watched& w, Clock::time_point now) {
  monitor::Sample s = w.sampler->Read(now);
  if (!s.alive) {
    w.gone = true;
    return;
  }
  if (!CanFire(w)) return;  // too many firings run: this one's triggers wait for a later poll
  const auto sustain = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(o_.seconds));
  if (o_.timer && !Finished(w) && (!w.next_timer || now >= *w.next_timer)) {
    // --timer: the first dump at once, then one every -s seconds (10 by default).
    Fire(w, Firing{"timer", std::to_string(w.fired + 1) + "/" + std::to_string(wanted_), "", ""});
    const double every = o_.seconds_given ? o_.seconds : 10.0;
    w.next_timer = Clock::now() + std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::duration<double>(every));
    if (!CanFire(w)) return;  // its firing runs on: the triggers are checked after it
    now = Clock::now();
  }
  // With --timer, -s is the timer's interval, not a time to hold.
  const auto hold = o_.timer ? std::chrono::nanoseconds(0) : sustain;
  // Each trigger has its turn in a pass; a pass resumes after a firing that
  // runs on (the trigger that fired does not go first again).
  for (; w.next_trigger < w.triggers.size(); ++w.next_trigger) {
    if (Finished(w) || g_stop.load()) return;
    PolledTrigger& t = w.triggers[w.next_trigger];
    auto f = t.Check(s, now, hold);
    if (!f || now < w.quiet_until) continue;
    Fire(w, *f);
    t.Fired();
    if (!CanFire(w)) {
      ++w.next_trigger;
      return;
    }
    now = Clock::now();
  }
  w.next_trigger = 0;
  if (o_.cgroup_pct && !w.sampler->cgroup_problem().empty()) {
    // --cgroup-memory with nothing to measure: said once per process.
    if (!w.cgroup_problem_said) {
      Fail("--cgroup-memory: process " + std::to_string(w.pid) + ": " +
           w.sampler->cgroup_problem());
    }
    w.cgroup_problem_said = true;
  }
  if (!o_.of_quota || w.sampler->quota_problem().empty()) return;
  // --of-quota with no quota to measure against: said once, then no value.
  static bool said = false;
  if (!said)
    Fail("--of-quota: process " + std::to_string(w.pid) + ": " + w.sampler->quota_problem());
  said = true;
}

// Every stop the session has to report: dumps for the firing ones.
void Monitor::PollTraced(Watched& w) {
  if (!w.traced) return;
  char drain[64];
  while (::read(wake_read_.get(), drain, sizeof drain) > 0) {
  }
  while (auto e = w.traced->Poll()) {
    if (Finished(w) || g_stop.load() || Clock::now() < w.quiet_until) {
      w.traced->Resume(*e);  // not dumped: the signal still goes to the target
      continue;
    }
    const char* trigger = e->kind == TracedEvent::Kind::kSignal ? "signal" : "exit";
    Fire(w, Firing{trigger, e->value, "", ""}, &*e);
  }
  if (w.traced->gone()) w.gone = true;
}

// Sleeps until `until`, a stop signal or a traced thread's stop; false once
// told to stop.
bool Monitor::Wait(Clock::time_point until) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
  std::vector<pollfd> p = {{stop_read_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
  std::vector<Watched*> owner = {nullptr, nullptr};
  for (auto& w : watched_) {
    if (!w->cgroup_event) continue;
    p.push_back({w->cgroup_event->fd(), POLLIN, 0});
    owner.push_back(w.get());
  }
  int n = 0;
  if (left.count() > 0) {
    n = HANDLE_EINTR(::poll(p.data(), p.size(), static_cast<int>(left.count() + 1)));
  }
  for (size_t i = 2; n > 0 && i < p.size(); ++i) {
    if ((p[i].revents & POLLIN) == 0) continue;
    owner[i]->cgroup_event->Drain();
    owner[i]->event_due = true;
  }
  char drain[64];  // a worker's end or a child's stop: the loop runs now, once
  while (::read(wake_read_.get(), drain, sizeof drain) > 0) {
  }
  return !g_stop.load();
}

// Whether `w` can have no more dumps: gone, every dump written, or (with
// no --timer) every trigger of a --memory list has fired.
bool Monitor::Done(const Watched& w) const {
  if (Finished(w)) return true;
  if (w.worker.busy() || w.triggers.empty() || o_.timer) return false;
  return std::ranges::all_of(w.triggers, [](const PolledTrigger& t) { return t.done(); });
}

// -w, --pgid: watches the processes that joined since the last scan.
void Monitor::Join() {
  for (const TargetSet::Found& p : set_->Scan()) {
    bool known = false;
    for (const auto& w : watched_)
      known = known || (w->pid == p.pid && w->start_ticks == p.start_ticks);
    if (known || TracedByUs(p.pid)) continue;
    auto w = Watch(p.pid);
    if (!w || (*w)->start_ticks != p.start_ticks) continue;  // gone already
    PrintLine(UtcNow() + " " + std::to_string(p.pid) + " watching " + ForTerminal((*w)->comm));
    ArmCgroupEvent(**w);
    watched_.push_back(std::move(*w));
  }
}

// The processes -w or --pgid watches are done: every one that appeared has
// had its dumps or is gone, and (-w) at least one had its dumps, or
// (--pgid) the group has no process left.
bool Monitor::SetDone() {
  bool all = true, any_dumped = false;
  for (const auto& w : watched_) {
    all = all && Done(*w);
    any_dumped = any_dumped || (!w->gone && Done(*w)) || w->written >= wanted_;
  }
  if (o_.pgid != 0 && set_->matching_now() == 0) {
    why_ = "the group has no process left";
    return true;
  }
  if (!all || !any_dumped) return false;
  why_ = "every process has had its dumps or exited";
  return true;
}

int Monitor::Run() {
  if (!o_.count_given && !o_.memory.empty()) wanted_ = static_cast<int>(o_.memory.size());
  if (o_.count_given) wanted_ = o_.count;
  if (o_.action != "dump" && o_.action != "heap-snapshot" && o_.action.rfind("exec:", 0) != 0) {
    return Fail("invalid --action '" + o_.action + "': expected dump, heap-snapshot or exec:CMD");
  }
  if (o_.action.rfind("exec:", 0) == 0) {
    if (auto words = SplitCommand(o_.action.substr(5)); !words) {
      return Fail(words.error().message());
    }
  }
  if ((o_.pid != 0) + !o_.wait_name.empty() + (o_.pgid != 0) != 1) {
    return Fail("give one of -p PID, -w NAME or --pgid PGID");
  }
  const bool traced = !o_.signals.empty() || o_.exit;
  if (traced && o_.pid == 0) {
    return Fail("--signal and --exit need -p PID: the monitor traces one process");
  }
  if (traced && o_.action == "heap-snapshot") {
    // The session stops every thread for a firing: the target's socket too.
    return Fail("--action heap-snapshot cannot be used with --signal or --exit");
  }
  auto triggers = BuildPolledTriggers(o_);
  if (!triggers) return Fail(triggers.error().message());
  if (triggers->empty() && !o_.timer && !traced) {
    return Fail(
        "no trigger: give --memory, --memory-below, --cgroup-memory, --cpu, --cpu-below, "
        "--threads, --fds, --signal, --exit or --timer");
  }
  std::set<int> signals;
  for (const std::string& name : o_.signals) {
    auto sig = ParseSignal(name);
    if (!sig) return Fail(sig.error().message());
    signals.insert(*sig);
  }
  if (o_.pid != 0) {
    auto first = Watch(o_.pid);
    if (!first) return Fail(first.error().message());
    if (o_.action == "heap-snapshot") {
      if (auto has = HasLibcppdiag(o_.pid); !has) return Fail(has.error().message());
    }
    ArmCgroupEvent(**first);
    watched_.push_back(std::move(*first));
  } else if (o_.pgid != 0) {
    set_.emplace(TargetSet::Matcher::Group(o_.pgid));
    set_->Scan();  // a first look: is there such a group?
    if (set_->matching_now() == 0)
      return Fail("process group " + std::to_string(o_.pgid) + " has no process");
    set_.emplace(TargetSet::Matcher::Group(o_.pgid));
  } else {
    set_.emplace(TargetSet::Matcher::Name(o_.wait_name));
  }

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    return Fail(Error::FromErrno("pipe2", "the stop pipe").message());
  stop_read_.reset(fds[0]);
  stop_write_.reset(fds[1]);
  g_stop_pipe = fds[1];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    return Fail(Error::FromErrno("pipe2", "the wake pipe").message());
  wake_read_.reset(fds[0]);
  wake_write_.reset(fds[1]);
  g_wake_pipe = fds[1];
  struct sigaction sa {};
  sa.sa_handler = OnStop;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  sa.sa_handler = OnChild;
  sa.sa_flags = SA_RESTART;  // no SA_NOCLDSTOP: it would hide the tracees' stops too
  sigaction(SIGCHLD, &sa, nullptr);
  if (traced) {
    auto session = TracedTarget::Seize(o_.pid, signals, o_.exit);
    if (!session) return Fail(session.error().message());
    watched_[0]->traced = std::move(*session);
  }

  const char* s = wanted_ == 1 ? "" : "s";
  if (set_) {
    std::printf("Monitoring %s: %d dump%s wanted of each\n", ForTerminal(set_->Describe()).c_str(),
                wanted_, s);
  } else {
    std::printf("Monitoring process %d: %d dump%s wanted\n", o_.pid, wanted_, s);
  }
  std::fflush(stdout);
  Clock::time_point next = Clock::now();
  while (!g_stop.load()) {
    if (traced) PollTraced(*watched_[0]);
    // A poll samples every process; a cgroup event only the one it names.
    const bool poll_due = Clock::now() >= next;
    if (poll_due && set_) Join();
    Clock::time_point wake = next;
    for (auto& w : watched_) {
      if (Done(*w)) w->cgroup_event.reset();  // no more dumps: unregistered
      const bool event_now = w->event_due && Clock::now() >= w->event_sampled + kEventGap;
      if (w->event_due && !event_now) wake = std::min(wake, w->event_sampled + kEventGap);
      if (!poll_due && !event_now) continue;
      if (event_now) w->event_sampled = Clock::now();
      w->event_due = false;
      if (w->worker.busy() || Done(*w) || g_stop.load()) continue;
      Sample(*w, Clock::now());
      if (Done(*w)) w->cgroup_event.reset();
      if (w->gone && set_) {
        PrintLine(UtcNow() + " " + std::to_string(w->pid) + " exited, " +
                  std::to_string(w->written.load()) + " of " + std::to_string(wanted_) +
                  " dumps written");
      }
    }
    if (poll_due) {
      next += o_.poll;
      if (next < Clock::now()) next = Clock::now();  // a dump took longer: no burst after it
    }
    if (set_) {
      if (SetDone()) break;
    } else {
      const Watched& w = *watched_[0];
      if (w.gone) {
        why_ = "the target exited";
        break;
      }
      if (Finished(w)) break;
      if (!w.traced && Done(w)) {
        why_ = "every trigger has fired";
        break;
      }
    }
    if (!Wait(std::min(wake, next))) break;
  }
  // Running firings end (a ptrace dump and an exec command are stopped by
  // g_stop), then the session detaches: the targets run on untraced.
  for (auto& w : watched_) w->worker.Join();
  for (auto& w : watched_) w->traced.reset();
  g_stop_pipe = -1;
  g_wake_pipe = -1;
  int written = 0;
  bool every = true;
  for (const auto& w : watched_) {
    written += w->written;
    every = every && w->written >= wanted_;
  }
  const int asked = wanted_ * std::max<int>(1, static_cast<int>(watched_.size()));
  if (every && !watched_.empty() && failed_actions_ == 0) return 0;
  if (every && !watched_.empty()) {
    return Fail(std::to_string(failed_actions_.load()) + " of " + std::to_string(written) +
                " --action commands failed");
  }
  if (set_ && watched_.empty()) {
    return Fail("stopped with no process found (" + set_->Describe() + "): " + why_);
  }
  return Fail("stopped with " + std::to_string(written) + " of " + std::to_string(asked) +
              " dumps written: " + why_);
}

}  // namespace

int RunMonitor(const MonitorOptions& options) { return Monitor(options).Run(); }

}  // namespace cppdiag::cli::monitor
