// cppdiag trace collect: CPU or wall-clock samples of a process, taken by
// the target itself (its diagnostic socket's trace command: no ptrace, no
// perf_event_open), symbolized here out of process and written as
// speedscope, Chrome Trace Event JSON or pprof. Ctrl-C (or SIGTERM) ends it
// early: the target is told to stop and its last samples still make a
// valid file.
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "cli/discovery.h"
#include "cli/display.h"
#include "cli/heap/pprof.h"
#include "cli/heap/symbolizer.h"
#include "cli/target_watch.h"
#include "cli/terminal.h"
#include "cli/trace/trace_model.h"
#include "cli/trace/trace_report.h"
#include "common/io.h"
#include "common/parse.h"
#include "common/raw_log.h"
#include "diag/ipc/client.h"
#include "diag/ipc/trace_data.h"

namespace cppdiag::cli {
namespace {

struct TraceOptions {
  int pid = 0;
  std::string output;
  std::string duration;
  std::string format = "speedscope";
  std::string profile = "cpu";
  uint32_t rate = 99;
  std::string counters_interval = "1s";
  bool overwrite = false;
  std::string file;
  size_t top = 15;
};

// Waits for SIGINT, SIGTERM or SIGHUP (blocked in every other thread) and
// asks the target to stop its trace; its reply then ends the exchange.
class StopOnSignal {
 public:
  explicit StopOnSignal(ipc::Endpoint endpoint) : endpoint_(std::move(endpoint)) {
    sigemptyset(&set_);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set_, sig);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    thread_ = std::thread([this] {
      int sig = 0;
      while (sigwait(&set_, &sig) == 0) {
        if (done_.load()) return;
        signal_.store(sig);
        // ESRCH: the trace has not started yet (or just ended); try until
        // it stops or the exchange is over.
        for (;;) {
          auto r = ipc::Call(endpoint_, ipc::Command::kTraceStop, nlohmann::json::object(),
                             std::chrono::seconds(10));
          if (r.ok() || r.error().code() != ESRCH || done_.load()) break;
          timespec pause{0, 50L * 1000 * 1000};
          if (sigtimedwait(&set_, nullptr, &pause) > 0 && done_.load()) return;
        }
      }
    });
  }
  ~StopOnSignal() {
    done_.store(true);
    pthread_kill(thread_.native_handle(), SIGHUP);
    thread_.join();
    // A signal that came after the trace ended is not left pending to kill us.
    timespec zero{};
    while (sigtimedwait(&set_, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  int signal() const { return signal_.load(); }

 private:
  ipc::Endpoint endpoint_;
  sigset_t set_, old_;
  std::atomic<bool> done_{false};
  std::atomic<int> signal_{0};
  std::thread thread_;
};

Status WriteOutput(const std::string& path, const std::string& bytes) {
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  CPPDIAG_RETURN_IF_ERROR(WriteStringToFile(tmp, bytes, 0600));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Error e = Error::FromErrno("rename", path);
    ::unlink(tmp.c_str());
    return e;
  }
  return OkStatus();
}

int Collect(const TraceOptions& o) {
  if (o.format != "speedscope" && o.format != "chromium" && o.format != "pprof") {
    return Fail("--format " + o.format + " is not one of speedscope, chromium, pprof");
  }
  if (o.profile != "cpu" && o.profile != "wall") {
    return Fail("--profile " + o.profile + " is not one of cpu, wall");
  }
  if (o.rate < 1 || o.rate > 10000) return Fail("--rate must be 1 to 10000 (Hz)");
  uint64_t duration_ms = 0;
  if (!o.duration.empty()) {
    auto d = ParseDuration(o.duration);
    if (!d) return Fail("--duration: " + d.error().message());
    duration_ms =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(*d).count());
    if (duration_ms == 0) return Fail("--duration must be at least 1ms");
  }
  auto interval = ParseDuration(o.counters_interval);
  if (!interval) return Fail("--counters-interval: " + interval.error().message());
  struct stat st {};
  if (!o.overwrite && ::lstat(o.output.c_str(), &st) == 0) {
    return Fail(o.output + " exists (use --overwrite to replace it)");
  }
  auto target = FindTarget(o.pid);
  if (!target) return Fail(target.error().message());
  TargetWatch watch(target->pid);

  nlohmann::json request = {
      {"profile", o.profile},
      {"rate_hz", o.rate},
      {"duration_ms", duration_ms},
      {"counters_interval_ms",
       std::chrono::duration_cast<std::chrono::milliseconds>(*interval).count()}};
  ipc::TraceData data;
  ProgressLine progress;
  const auto started = std::chrono::steady_clock::now();
  Status frame_error = OkStatus();
  Result<nlohmann::json> reply = Error(EIO, "", "no reply");
  int stop_signal = 0;
  {
    StopOnSignal stopper(target->endpoint);
    reply = ipc::Call(
        target->endpoint, ipc::Command::kTrace, request, std::chrono::seconds(30),
        [&](const nlohmann::json& frame) {
          if (!frame_error.ok()) return;  // the first bad frame is the one to name
          if (Status s = ipc::AddTraceFrame(frame, &data); !s.ok()) {
            frame_error = s;
            return;
          }
          double secs =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
          char line[160];
          if (duration_ms != 0) {
            std::snprintf(line, sizeof line, "  %.1f / %.1f s  %zu samples  %llu lost", secs,
                          static_cast<double>(duration_ms) / 1000.0, data.samples.size(),
                          static_cast<unsigned long long>(data.lost_samples));
          } else {
            std::snprintf(line, sizeof line, "  %.1f s (Ctrl-C to stop)  %zu samples  %llu lost",
                          secs, data.samples.size(),
                          static_cast<unsigned long long>(data.lost_samples));
          }
          progress.Show(line);
        });
    stop_signal = stopper.signal();
  }
  progress.Clear();
  if (!reply && reply.error().code() != EINVAL && watch.Exited(std::chrono::seconds(2))) {
    return Fail(watch.ExitedDuring("the trace"));
  }
  if (!reply) {
    return Fail("trace of process " + std::to_string(o.pid) +
                " failed: " + reply.error().message());
  }
  if (!frame_error.ok()) return Fail(frame_error.error().message());
  if (Status s = ipc::AddTraceFrame(*reply, &data, /*is_reply=*/true); !s.ok()) {
    return Fail(s.error().message());
  }

  heap::Symbolizer symbolizer(data.mappings, "/proc/" + std::to_string(target->pid) + "/root");
  std::string title = target->name + " (" + std::to_string(target->pid) + ")";
  if (o.format == "pprof") {
    pprof::Profile profile = trace::ToPprof(data, symbolizer);
    if (auto w = pprof::WriteProfileFile(profile, o.output, o.overwrite); !w) {
      return Fail(w.error().message());
    }
  } else {
    trace::SymbolizedTrace t = trace::SymbolizeTrace(data, trace::SymbolizerResolver(symbolizer));
    std::string bytes = o.format == "speedscope" ? trace::ToSpeedscope(t, title)
                                                 : trace::ToChromium(t, target->pid, title);
    if (Status w = WriteOutput(o.output, bytes); !w.ok()) return Fail(w.error().message());
  }
  size_t threads = 0;
  for (const auto& th : data.threads) threads += th.sampled ? 1 : 0;
  double secs = static_cast<double>(data.end_monotonic_ns - data.start_monotonic_ns) / 1e9;
  std::printf(
      "Wrote %s (%s): process %d (%s), %s profile at %u Hz, %.1f s, %zu samples from %zu "
      "thread(s), %llu lost%s\n",
      o.output.c_str(), o.format.c_str(), o.pid, ForTerminal(target->name).c_str(),
      data.profile.c_str(), data.rate_hz, secs, data.samples.size(), threads,
      static_cast<unsigned long long>(data.lost_samples),
      stop_signal != 0 ? (std::string(" (stopped by SIG") + SignalAbbrev(stop_signal) + ")").c_str()
                       : "");
  if (!data.heap_samples.empty() || !data.markers.empty() || data.heap_samples_missed != 0) {
    std::printf("  on the timeline: %zu heap sample(s) (%llu missed), %zu marker(s)%s\n",
                data.heap_samples.size(), static_cast<unsigned long long>(data.heap_samples_missed),
                data.markers.size(),
                o.format == "pprof" ? " (not in pprof)"
                : o.format == "speedscope" && !data.markers.empty()
                    ? " (speedscope has no markers: not written)"
                    : "");
  }
  return 0;
}

int Report(const TraceOptions& o) {
  auto bytes = ReadFileToString(o.file, 1u << 30);
  if (!bytes) return Fail(bytes.error().message());
  auto report = trace::BuildTraceReport(*bytes);
  if (!report) return Fail(o.file + ": " + report.error().message());
  std::printf("%s: %s", o.file.c_str(), trace::FormatTraceReport(*report, o.top).c_str());
  return 0;
}

}  // namespace

void AddTraceCommand(CLI::App& app, int* exit_code) {
  auto* trace = app.add_subcommand("trace", "CPU or wall-clock samples of a process, by thread");
  trace->require_subcommand(1);
  auto o = std::make_shared<TraceOptions>();
  auto* collect = trace->add_subcommand(
      "collect", "Sample a process's threads and write speedscope, Chrome trace or pprof");
  collect->add_option("-p,--process-id", o->pid, "Target process id")->required();
  collect->add_option("-o,--output", o->output, "File to write")->required();
  collect->add_option("--duration", o->duration,
                      "How long to sample (30s, 2m); without it, until Ctrl-C");
  collect->add_option("--format", o->format, "speedscope, chromium or pprof")
      ->capture_default_str();
  collect
      ->add_option("--profile", o->profile,
                   "cpu (where threads spend CPU) or wall (every thread, blocked too)")
      ->capture_default_str();
  collect->add_option("--rate", o->rate, "Samples per second per thread (1-10000)")
      ->capture_default_str();
  collect
      ->add_option("--counters-interval", o->counters_interval,
                   "Counters on the timeline every so often (chromium); 0 for none")
      ->capture_default_str();
  collect->add_flag("--overwrite", o->overwrite, "Replace an existing file");
  collect->callback([o, exit_code] { *exit_code = Collect(*o); });

  auto* report = trace->add_subcommand(
      "report", "Top functions of a speedscope or pprof trace file by self and total time");
  report->add_option("file", o->file, "A file trace collect wrote (speedscope or pprof)")
      ->required();
  report->add_option("--top", o->top, "How many functions to show")->capture_default_str();
  report->callback([o, exit_code] { *exit_code = Report(*o); });
}

}  // namespace cppdiag::cli
