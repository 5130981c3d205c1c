// cppdiag counters list | monitor | collect: the live counters of a process
// (diag/counters/catalog.h), read over its diagnostic socket; rates come from
// two consecutive readings (cli/counters/derived.h). Like dotnet-counters:
// `monitor` redraws a table in place, `collect` writes CSV or JSON rows.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/counters/derived.h"
#include "cli/counters/format.h"
#include "cli/discovery.h"
#include "cli/display.h"
#include "cli/options.h"
#include "cli/target_watch.h"
#include "cli/terminal.h"
#include "common/io.h"
#include "common/raw_log.h"
#include "common/scoped_fd.h"
#include "diag/counters/catalog.h"
#include "diag/counters/sample.h"
#include "diag/ipc/client.h"

namespace cppdiag::cli {
namespace {

using Clock = std::chrono::steady_clock;
using counters::Sample;

struct CountersOptions {
  int pid = 0;
  std::chrono::nanoseconds interval = std::chrono::seconds(1);
  std::optional<std::chrono::nanoseconds> duration;  // none: until stopped
  std::string format = "csv";
  std::string output;
  bool overwrite = false;
};

// SIGINT, SIGTERM and SIGHUP end monitor and collect cleanly: the handler
// only records the signal and writes a byte to a pipe the wait polls
// (async-signal-safe: a store to a sig_atomic_t and write(2)).
volatile sig_atomic_t g_stop_signal = 0;
int g_stop_pipe_write = -1;

extern "C" void OnStopSignal(int sig) {
  g_stop_signal = sig;
  int saved = errno;
  char c = 0;
  (void)!::write(g_stop_pipe_write, &c, 1);
  errno = saved;
}

class ScopedStopSignals {
 public:
  ScopedStopSignals() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return;
    read_ = ScopedFd(fds[0]);
    write_ = ScopedFd(fds[1]);
    g_stop_pipe_write = write_.get();
    struct sigaction sa {};
    sa.sa_handler = OnStopSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocked read returns EINTR
    for (size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~ScopedStopSignals() {
    for (size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
    g_stop_pipe_write = -1;
  }
  int fd() const { return read_.get(); }

 private:
  static constexpr std::array<int, 4> kSignals = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  ScopedFd read_, write_;
  std::array<struct sigaction, 4> old_{};
};

enum class Wake { kTick, kStop, kQuit };

// Waits until `deadline`, a stop signal, or `q` on `key_fd` (-1: none).
Wake WaitUntil(Clock::time_point deadline, int stop_fd, int key_fd) {
  for (;;) {
    if (g_stop_signal != 0) return Wake::kStop;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Wake::kTick;
    pollfd fds[2] = {{stop_fd, POLLIN, 0}, {key_fd, POLLIN, 0}};
    int n = ::poll(fds, key_fd >= 0 ? 2 : 1, static_cast<int>(left.count()) + 1);
    if (n < 0 && errno != EINTR) return Wake::kTick;
    if (key_fd >= 0 && (fds[1].revents & POLLIN)) {
      char buf[64];
      ssize_t got = ::read(key_fd, buf, sizeof buf);
      for (ssize_t i = 0; i < got; ++i) {
        if (buf[i] == 'q' || buf[i] == 'Q') return Wake::kQuit;
      }
      if (got == 0) key_fd = -1;  // end of input: keep running on the clock
    }
  }
}

// Asks one target for its counters, and tells a target that has gone from
// one that fails.
class Poller {
 public:
  static Result<Poller> Connect(pid_t pid) {
    auto target = FindTarget(pid);
    if (!target) return target.error();
    Poller p;
    p.target_ = std::move(*target);
    p.watch_.emplace(pid);
    return p;
  }

  // The next sample, with what it and the previous one derive.
  Result<Sample> Next() {
    auto reply = ipc::Call(target_.endpoint, ipc::Command::kCounters, nlohmann::json::object(),
                           std::chrono::seconds(10));
    if (!reply) {
      return Error(reply.error().code(), "",
                   "counters of process " + std::to_string(target_.pid) +
                       " failed: " + reply.error().message());
    }
    auto sample = counters::SampleFromJson(*reply);
    if (!sample) return sample.error();
    counters::AddDerived(previous_ ? &*previous_ : nullptr, &*sample);
    previous_ = *sample;
    return sample;
  }

  // True when the process is no more (or its pid now names another one).
  bool TargetGone() const { return watch_->Exited(std::chrono::seconds(1)); }

  const DiagTarget& target() const { return target_; }

 private:
  DiagTarget target_;
  std::optional<TargetWatch> watch_;
  std::optional<Sample> previous_;
};

int List() {
  std::printf("%-52s %-8s %-8s %s\n", "NAME", "KIND", "UNIT", "DESCRIPTION");
  for (const counters::CounterInfo& c : counters::Catalog()) {
    std::string when = c.when == std::string("always") ? "" : std::string(" [") + c.when + "]";
    std::printf("%-52s %-8s %-8s %s%s\n", c.name, counters::CounterKindName(c.kind),
                counters::CounterUnitName(c.unit), c.description, when.c_str());
  }
  std::printf(
      "\nDerived counters are computed by cppdiag from two consecutive samples; the others "
      "are what the target reports (and what leakapp's /metrics exports).\n");
  return 0;
}

int Monitor(const CountersOptions& o) {
  auto poller = Poller::Connect(o.pid);
  if (!poller) return Fail(poller.error().message());
  auto sample = poller->Next();
  if (!sample) return Fail(sample.error().message());

  const bool tty = IsTerminal(stdout);
  std::unique_ptr<ScopedRawTerminal> raw;
  if (tty) raw = std::make_unique<ScopedRawTerminal>(STDIN_FILENO);
  int key_fd = raw && raw->active() ? STDIN_FILENO : -1;
  ScopedStopSignals stop;
  std::string title = "[cppdiag] process " + std::to_string(o.pid) + " (" +
                      ForTerminal(poller->target().name) + "), every " + FormatSeconds(o.interval);

  InPlaceBlock table(stdout);
  auto next = Clock::now();
  std::string end_message;
  int code = 0;
  {
    ScopedHiddenCursor hidden(stdout);
    for (;;) {
      std::vector<std::string> lines;
      lines.emplace_back(tty ? (key_fd >= 0 ? "Press q or Ctrl-C to quit" : "Press Ctrl-C to quit")
                             : "");
      lines.push_back(title + "   " + counters::FormatTimestamp(sample->unix_ns));
      for (auto& l : counters::TableLines(*sample)) lines.push_back(std::move(l));
      if (tty) {
        table.Draw(lines);
      } else {
        // Not a terminal: each sample's table after the last, without the key hint.
        std::string out;
        for (size_t i = 1; i < lines.size(); ++i) out += lines[i] + "\n";
        std::fputs((out + "\n").c_str(), stdout);
        std::fflush(stdout);
      }

      next = std::max(next + o.interval, Clock::now());  // a slow reply does not bunch up refreshes
      Wake wake = WaitUntil(next, stop.fd(), key_fd);
      if (wake == Wake::kStop || wake == Wake::kQuit) break;
      sample = poller->Next();
      if (!sample) {
        if (poller->TargetGone()) {
          end_message = "process " + std::to_string(o.pid) + " has exited";
        } else {
          end_message = sample.error().message();
          code = 1;
        }
        break;
      }
    }
  }  // the cursor is shown again
  std::fflush(stdout);
  if (code != 0) return Fail(end_message, code);
  if (!end_message.empty()) std::printf("%s\n", end_message.c_str());
  return 0;
}

int Collect(const CountersOptions& o) {
  auto format = counters::ParseOutputFormat(o.format);
  if (!format) return Fail(format.error().message());
  const std::optional<std::chrono::nanoseconds>& duration = o.duration;
  if (!o.overwrite && ::access(o.output.c_str(), F_OK) == 0) {
    return Fail(o.output + " exists (use --overwrite to replace it)");
  }
  // Reach the target before creating the file: a failure leaves none.
  auto poller = Poller::Connect(o.pid);
  if (!poller) return Fail(poller.error().message());
  auto sample = poller->Next();
  if (!sample) return Fail(sample.error().message());

  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (o.overwrite ? O_TRUNC : O_EXCL);
  auto file = OpenFile(o.output, flags, 0644);
  if (!file) return Fail(file.error().message());
  counters::RowWriter writer(*format);
  // One write(2) per row: whatever stops us, the file holds whole rows.
  auto put = [&](const std::string& text) {
    return WriteAll(file->get(), text.data(), text.size(), o.output.c_str());
  };
  if (auto w = put(writer.Begin()); !w) return Fail(w.error().message());

  ProgressLine progress;
  ScopedStopSignals stop;
  const int64_t first_ns = sample->monotonic_ns;
  const auto start = Clock::now();
  auto next = start;
  size_t rows = 0;
  std::string why = duration ? "" : " (stopped)";
  for (;;) {
    double elapsed = static_cast<double>(sample->monotonic_ns - first_ns) / 1e9;
    if (auto w = put(writer.Row(*sample, elapsed)); !w) return Fail(w.error().message());
    ++rows;
    if (progress.active()) {
      std::string of = duration ? " of " + FormatSeconds(*duration) : " (Ctrl-C to stop)";
      progress.Show("Collecting counters of process " + std::to_string(o.pid) + " to " +
                    ForTerminal(o.output) + ": " + std::to_string(rows) + " sample(s), " +
                    counters::FormatNumber(elapsed) + " s" + of);
    }
    next += o.interval;
    if (duration && next - start > *duration) {
      why = "";
      break;
    }
    Wake wake = WaitUntil(next, stop.fd(), -1);
    if (wake != Wake::kTick) {
      why = std::string(" (stopped by SIG") + SignalAbbrev(g_stop_signal) + ")";
      break;
    }
    sample = poller->Next();
    if (!sample) {
      if (!poller->TargetGone()) {
        (void)put(writer.End());
        progress.Finish();
        return Fail(sample.error().message());
      }
      why = " (process " + std::to_string(o.pid) + " exited)";
      break;
    }
  }
  if (auto w = put(writer.End()); !w) return Fail(w.error().message());
  if (::close(file->release()) != 0) return Fail(Error::FromErrno("close", o.output).message());
  progress.Finish();
  std::printf("Wrote %zu sample(s) of process %d to %s%s\n", rows, o.pid, o.output.c_str(),
              why.c_str());
  return 0;
}

}  // namespace

void AddCountersCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("counters", "Live counters: memory, heap, cgroup, CPU, threads");
  cmd->require_subcommand(1);
  auto o = std::make_shared<CountersOptions>();

  auto* list = cmd->add_subcommand("list", "List the counters, their units and meaning");
  list->callback([exit_code] { *exit_code = List(); });

  auto* monitor = cmd->add_subcommand(
      "monitor", "Show a process's counters in a table that refreshes in place (q to quit)");
  monitor->add_option("-p,--process-id", o->pid, "Target process id")->required();
  AddDurationOption(monitor, "--interval", &o->interval, "Time between refreshes (500ms, 2s)",
                    Zero::kRefused);
  monitor->callback([o, exit_code] { *exit_code = Monitor(*o); });

  auto* collect =
      cmd->add_subcommand("collect", "Write a process's counters to a file, one row per interval");
  collect->add_option("-p,--process-id", o->pid, "Target process id")->required();
  collect->add_option("-o,--output", o->output, "File to write")->required();
  collect->add_option("--format", o->format, "csv, json (an array) or jsonl (JSON lines)")
      ->capture_default_str();
  AddDurationOption(collect, "--duration", &o->duration,
                    "Stop after this long (30s, 5m); default: Ctrl-C", Zero::kRefused);
  AddDurationOption(collect, "--interval", &o->interval, "Time between samples (250ms, 1s)",
                    Zero::kRefused);
  collect->add_flag("--overwrite", o->overwrite, "Replace an existing file");
  collect->callback([o, exit_code] { *exit_code = Collect(*o); });
}

}  // namespace cppdiag::cli
