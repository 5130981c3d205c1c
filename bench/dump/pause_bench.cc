// pause_bench: how long an on-demand dump stops the target's threads —
// cppdiag's fork-mode self-dump, its suspend mode, `cppdiag dump collect
// --ptrace` with --snapshot fork and stop, and gdb's gcore — for a process
// with N GiB resident (see pause_bench.md).
//
// The process is its own target: it touches --sizes MiB of anonymous memory
// (a different non-zero word every 8 bytes), starts parked threads, a
// heartbeat thread that beats every 100 us and records the longest gap
// between beats (how long it was stopped), and a mutator thread that keeps
// rewriting its memory at --mutate-mbps (so copy-on-write has work to do, as
// in a live service). For each size and method it reports the heartbeat's
// longest gap during the dump, the pause the dump reported, the wall time,
// the peak extra charge of its memory cgroup (v1: memory.max_usage_in_bytes;
// the fork children and the self-dump's page cache are charged there), and
// for the tools it runs (the cppdiag CLI, gdb) their own: they run in a
// cgroup of their own, so its peak is the tool's memory and page cache.
#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_cgroup.h"
#include "common/cgroup.h"
#include "common/io.h"
#include "diag/dump/self_dump.h"

extern char** environ;

namespace {

using cppdiag::bench::BenchCgroup;
using cppdiag::bench::Mib;

using Clock = std::chrono::steady_clock;
namespace dump = cppdiag::dump;

#ifndef CPPDIAG_CLI_BINARY
#define CPPDIAG_CLI_BINARY "cppdiag"
#endif

struct Options {
  std::vector<size_t> sizes_mb = {1024, 4096};
  int threads = 4;
  std::string dir = "/tmp";
  bool self = true;  // the self-dump rows (and PrepareSelfDump at all)
  bool suspend = true;
  bool ptrace = true;
  bool gcore = true;
  std::string cppdiag = CPPDIAG_CLI_BINARY;
  uint64_t mutate_mbps = 256;
};

std::atomic<bool> g_stop{false};
std::atomic<int64_t> g_max_gap_ns{0};
std::atomic<uint64_t> g_beats{0};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

void Heartbeat() {
  int64_t last = NowNs();
  while (!g_stop.load(std::memory_order_relaxed)) {
    timespec ts{0, 100 * 1000};
    ::nanosleep(&ts, nullptr);
    int64_t now = NowNs();
    int64_t gap = now - last;
    int64_t seen = g_max_gap_ns.load(std::memory_order_relaxed);
    while (gap > seen && !g_max_gap_ns.compare_exchange_weak(seen, gap)) {
    }
    g_beats.fetch_add(1, std::memory_order_release);
    last = now;
  }
}

// Rewrites one word per page, `mbps` MiB of pages per second, round and round.
void Mutate(uint8_t* mem, size_t bytes, uint64_t mbps) {
  if (mbps == 0) return;
  const size_t pages_per_ms = std::max<size_t>(1, (mbps << 20) / 4096 / 1000);
  size_t page = 0;
  uint64_t v = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    for (size_t i = 0; i < pages_per_ms; ++i) {
      std::memcpy(mem + page * 4096, &++v, sizeof v);
      page = (page + 1) % (bytes / 4096);
    }
    timespec ts{0, 1000 * 1000};
    ::nanosleep(&ts, nullptr);
  }
}

struct Sample {
  bool ok = false;
  double gap_ms = 0;       // the heartbeat's longest gap: the real pause
  double reported_ms = 0;  // the pause the dump reported (gcore: none)
  double total_s = 0;
  uint64_t extra_bytes = 0;  // peak charge of the target's cgroup beyond the baseline
  bool tool = false;         // run as a separate process (cppdiag --ptrace, gdb)
  // Peak charge of the tool's cgroup: its memory and page cache. (Not
  // wait4's ru_maxrss: a child of posix_spawn starts as a vfork sharing
  // this process's memory, and its maxrss keeps that memory's high mark.)
  uint64_t tool_bytes = 0;
  std::string mode;
  uint32_t not_captured = 0;  // threads that did not stop in time (recorded from /proc)
};

// The two cgroups: the target's (this process), and the one its tools join.
struct Cgroups {
  BenchCgroup target, tool;
};

struct Measure {
  const Cgroups& cg;
  uint64_t base = 0, tool_base = 0;
  Clock::time_point t0;
  explicit Measure(const Cgroups& c) : cg(c) {
    if (cg.target.active()) {
      cg.target.DropCache();
      base = cg.target.Usage();
      cg.target.ResetPeak();
    }
    if (cg.tool.active()) {
      cg.tool.DropCache();
      tool_base = cg.tool.Usage();
      cg.tool.ResetPeak();
    }
    g_max_gap_ns.store(0);
    t0 = Clock::now();
  }
  void Finish(Sample* s) const {
    s->total_s = std::chrono::duration<double>(Clock::now() - t0).count();
    // The heartbeat records a gap at the beat that ends it: wait for two
    // more beats (it may have been let go just now), at most 1 s.
    const uint64_t beats = g_beats.load(std::memory_order_acquire);
    for (int i = 0; i < 1000 && g_beats.load(std::memory_order_acquire) < beats + 2; ++i) {
      timespec ts{0, 1000 * 1000};
      ::nanosleep(&ts, nullptr);
    }
    s->gap_ms = static_cast<double>(g_max_gap_ns.load()) / 1e6;
    if (cg.target.active()) {
      uint64_t peak = cg.target.Peak();
      s->extra_bytes = peak > base ? peak - base : 0;
    }
    if (cg.tool.active()) {
      uint64_t peak = cg.tool.Peak();
      s->tool_bytes = peak > tool_base ? peak - tool_base : 0;
    }
  }
};

Sample SelfDump(dump::SelfDumpMode mode, const std::string& path, const Cgroups& cg) {
  dump::SelfDumpRequest req;
  req.type = cppdiag::DumpType::kFull;
  req.reason = "bench";
  req.path = path.c_str();
  req.mode = mode;
  dump::SelfDumpResult res;
  Sample s;
  Measure m(cg);
  int err = dump::WriteSelfDump(req, &res);
  m.Finish(&s);
  ::unlink(path.c_str());
  if (err != 0) {
    std::fprintf(stderr, "self-dump failed: %s: %s\n", res.failed_call, std::strerror(err));
    return s;
  }
  s.ok = true;
  s.reported_ms = static_cast<double>(res.pause_ns) / 1e6;
  s.mode = dump::SelfDumpModeName(res.mode);
  s.not_captured = res.threads_not_captured;
  return s;
}

// Runs a tool on this process, as its own child: through `sh` so that it
// joins the tools' cgroup before it execs (posix_spawn vforks: forking this
// process would itself stop it to copy its page tables). Its stdout goes to
// `out` (it must not block on a pipe this process cannot read while stopped).
Sample RunTool(std::vector<std::string> args, const std::string& out, const Cgroups& cg) {
  if (cg.tool.active()) {
    args.insert(args.begin(),
                {"sh", "-c", "echo $$ > \"$0\" && exec \"$@\"", cg.tool.procs_path()});
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  Sample s;
  s.tool = true;
  Measure m(cg);
  pid_t child = -1;
  int err = posix_spawnp(&child, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) {
    std::fprintf(stderr, "cannot run %s: %s\n", argv[0], std::strerror(err));
    return s;
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  m.Finish(&s);
  s.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!s.ok) std::fprintf(stderr, "%s failed (status %d)\n", args.front().c_str(), status);
  return s;
}

Sample Gcore(const std::string& path, const Cgroups& cg) {
  Sample s = RunTool({"gdb", "-batch", "-nx", "-ex", "set debuginfod enabled off", "-p",
                      std::to_string(::getpid()), "-ex", "gcore " + path},
                     "/dev/null", cg);
  s.ok = s.ok && ::access(path.c_str(), F_OK) == 0;
  ::unlink(path.c_str());
  s.mode = "ptrace";
  return s;
}

// `cppdiag dump collect --ptrace`: a process with no libcppdiag is dumped
// the same way (this one's self-dump machinery is not involved: no socket
// is served, and the tool only attaches and reads). Its Complete line gives
// the pause it measured and the mode it used.
Sample PtraceCollect(const Options& o, const char* snapshot, const std::string& path,
                     const Cgroups& cg) {
  const std::string out = path + ".out";
  Sample s = RunTool({o.cppdiag, "dump", "collect", "--ptrace", "-p", std::to_string(::getpid()),
                      "--snapshot", snapshot, "--type", "full", "-o", path},
                     out, cg);
  ::unlink(path.c_str());
  auto text = cppdiag::ReadFileToString(out);
  ::unlink(out.c_str());
  const char* key = "target paused ";
  size_t at = text ? text->find(key) : std::string::npos;
  if (s.ok && at != std::string::npos) {
    char* end = nullptr;
    s.reported_ms = std::strtod(text->c_str() + at + std::strlen(key), &end);
    size_t comma = text->find(", ", end - text->c_str());
    if (comma != std::string::npos) s.mode = text->substr(comma + 2, 4);  // "fork" or "stop"
  }
  if (s.ok && s.mode != snapshot) {
    std::fprintf(stderr, "cppdiag --snapshot %s: unexpected output: %s\n", snapshot,
                 text ? text->c_str() : "(none)");
    s.ok = false;
  }
  return s;
}

void PrintRow(const char* name, const Sample& s, const Cgroups& cg) {
  if (!s.ok) {
    std::printf("  %-22s failed\n", name);
    return;
  }
  char reported[32] = "-";
  if (s.reported_ms > 0) std::snprintf(reported, sizeof reported, "%.1f ms", s.reported_ms);
  std::printf("  %-22s pause %9.1f ms (reported %10s)  total %7.2f s", name, s.gap_ms, reported,
              s.total_s);
  if (cg.target.active()) std::printf("  target +%s", Mib(s.extra_bytes).c_str());
  if (s.tool && cg.tool.active()) std::printf("  tool +%s", Mib(s.tool_bytes).c_str());
  if (s.not_captured != 0) std::printf("  (%u threads did not stop in time)", s.not_captured);
  std::printf("\n");
}

uint64_t ResidentBytes() {
  auto status = cppdiag::ReadFileToString("/proc/self/status");
  size_t at = status ? status->find("VmRSS:") : std::string::npos;
  return at == std::string::npos ? 0 : std::strtoull(status->c_str() + at + 6, nullptr, 10) * 1024;
}

struct Rows {
  Sample fork, suspend, ptrace_fork, ptrace_stop, gcore;
};

// The ratios the goals are stated in (issue 12 for --ptrace, pause_bench.md).
void PrintRatios(const Rows& r, uint64_t rss, bool cg_active) {
  auto pause_ratio = [&](const Sample& a, const Sample& b, const char* what, const char* goal) {
    if (a.ok && b.ok && b.gap_ms > 0)
      std::printf("  %s: %.0fx%s\n", what, a.gap_ms / b.gap_ms, goal);
  };
  pause_ratio(r.gcore, r.fork, "ratio gcore pause / cppdiag fork pause", " (goal: >= 50x)");
  pause_ratio(r.suspend, r.fork, "ratio cppdiag suspend pause / fork pause", "");
  pause_ratio(r.gcore, r.ptrace_fork, "ratio gcore pause / --ptrace fork pause",
              " (goal: >= 20x at 1 GiB)");
  if (r.gcore.ok && r.ptrace_stop.ok && r.ptrace_stop.total_s > 0) {
    std::printf("  ratio gcore total / --ptrace stop total: %.2fx (goal: >= 1)\n",
                r.gcore.total_s / r.ptrace_stop.total_s);
  }
  if (rss == 0 || !cg_active) return;
  auto share = [&](const Sample& s, const char* name, const char* goal) {
    if (!s.ok) return;
    std::printf("  %s memory / target RSS: %.1f %%%s\n", name,
                100.0 * static_cast<double>(s.tool_bytes) / static_cast<double>(rss), goal);
  };
  share(r.ptrace_stop, "--ptrace stop tool", " (goal: < 5 %)");
  share(r.ptrace_fork, "--ptrace fork tool", " (goal: < 5 %)");
  share(r.gcore, "gdb gcore", "");
}

int RunSize(const Options& o, size_t mb, const Cgroups& cg) {
  size_t bytes = mb << 20;
  auto* mem = static_cast<uint8_t*>(
      ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (mem == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  for (size_t i = 0; i < bytes; i += 8) {
    uint64_t v = (i * 0x9E3779B97F4A7C15ULL) | 1;
    std::memcpy(mem + i, &v, 8);
  }
  const uint64_t rss = ResidentBytes();
  g_stop = false;
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return 1;
  std::latch started(o.threads);
  std::vector<std::thread> threads;
  for (int i = 0; i < o.threads; ++i) {
    threads.emplace_back([&] {
      started.count_down();
      char c;
      while (::read(pipe_fds[0], &c, 1) > 0) {
      }
    });
  }
  started.wait();
  std::thread heartbeat(Heartbeat);
  std::thread mutator(Mutate, mem, bytes, o.mutate_mbps);

  std::string base = o.dir + "/pause-bench." + std::to_string(::getpid());
  Rows r;
  if (o.self) {
    r.fork = SelfDump(dump::SelfDumpMode::kFork, base + ".fork", cg);
    if (o.suspend) r.suspend = SelfDump(dump::SelfDumpMode::kSuspend, base + ".suspend", cg);
  }
  if (o.ptrace) {
    r.ptrace_fork = PtraceCollect(o, "fork", base + ".ptrace-fork", cg);
    r.ptrace_stop = PtraceCollect(o, "stop", base + ".ptrace-stop", cg);
  }
  if (o.gcore) r.gcore = Gcore(base + ".gcore", cg);

  g_stop = true;
  heartbeat.join();
  mutator.join();
  ::close(pipe_fds[1]);
  for (auto& t : threads) t.join();
  ::close(pipe_fds[0]);
  ::munmap(mem, bytes);

  std::printf(
      "%zu MiB resident (VmRSS %s), %d threads (+ heartbeat, mutator at %llu MiB/s), full "
      "dumps:\n",
      mb, Mib(rss).c_str(), o.threads + 1, static_cast<unsigned long long>(o.mutate_mbps));
  if (o.self) {
    PrintRow("cppdiag fork", r.fork, cg);
    if (o.suspend) PrintRow("cppdiag suspend", r.suspend, cg);
  }
  if (o.ptrace) {
    PrintRow("cppdiag --ptrace fork", r.ptrace_fork, cg);
    PrintRow("cppdiag --ptrace stop", r.ptrace_stop, cg);
  }
  if (o.gcore) PrintRow("gdb gcore", r.gcore, cg);
  PrintRatios(r, rss, cg.tool.active());
  std::fflush(stdout);
  bool ok = (!o.self || r.fork.ok) && (!o.ptrace || (r.ptrace_fork.ok && r.ptrace_stop.ok));
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--sizes") {
      o.sizes_mb.clear();
      std::stringstream ss(next());
      for (std::string v; std::getline(ss, v, ',');) o.sizes_mb.push_back(std::stoull(v));
    } else if (a == "--threads") {
      o.threads = std::atoi(next().c_str());
    } else if (a == "--dir") {
      o.dir = next();
    } else if (a == "--no-self") {
      o.self = false;
    } else if (a == "--no-suspend") {
      o.suspend = false;
    } else if (a == "--no-ptrace") {
      o.ptrace = false;
    } else if (a == "--no-gcore") {
      o.gcore = false;
    } else if (a == "--cppdiag") {
      o.cppdiag = next();
    } else if (a == "--mutate-mbps") {
      o.mutate_mbps = std::strtoull(next().c_str(), nullptr, 10);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--sizes MiB,MiB] [--threads N] [--dir D] [--no-self] "
                   "[--no-suspend] [--no-ptrace] [--no-gcore] [--cppdiag PATH] "
                   "[--mutate-mbps N]\n",
                   argv[0]);
      return 2;
    }
  }
  Cgroups cg;
  // The tools' cgroup first: made after this process joined its own, it
  // would be made inside it, and the tools' charges would count as the target's.
  if (o.ptrace || o.gcore) cg.tool.CreateForChildren("cppdiag-pause-bench-tool");
  if (!cg.target.Create("cppdiag-pause-bench"))
    std::fprintf(stderr, "no v1 memory cgroup: peak extra memory not measured\n");
  if (o.self) {
    dump::SelfDumpConfig config;
    config.default_type = cppdiag::DumpType::kFull;
    config.name_template = o.dir + "/pause-bench.%p";
    if (auto st = dump::PrepareSelfDump(config); !st) {
      std::fprintf(stderr, "PrepareSelfDump: %s\n", st.error().message().c_str());
      return 1;
    }
  }
  std::printf(
      "pause_bench: pause = the longest gap of a heartbeat thread (100 us beats) in the\n"
      "target during the dump; one run per size; files in %s\n",
      o.dir.c_str());
  int rc = 0;
  for (size_t mb : o.sizes_mb) rc |= RunSize(o, mb, cg);
  return rc;
}
