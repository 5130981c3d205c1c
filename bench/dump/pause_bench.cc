// pause_bench: how long an on-demand dump stops the target's threads —
// cppdiag's fork-mode self-dump, its suspend mode, and gdb's gcore — for a
// process with N GiB resident (see pause_bench.md).
//
// The process is its own target: it touches --sizes MiB of anonymous memory
// (a different non-zero word every 8 bytes), starts parked threads, a
// heartbeat thread that beats every 100 us and records the longest gap
// between beats (how long it was stopped), and a mutator thread that keeps
// rewriting its memory at --mutate-mbps (so copy-on-write has work to do, as
// in a live service). For each size and method it reports the heartbeat's
// longest gap during the dump, the pause the dump reported, the wall time,
// and the peak extra charge of its memory cgroup (v1: memory.max_usage_in_bytes;
// the fork child and the page cache are charged there too).
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

struct Options {
  std::vector<size_t> sizes_mb = {1024, 4096};
  int threads = 4;
  std::string dir = "/tmp";
  bool gcore = true;
  bool suspend = true;
  uint64_t mutate_mbps = 256;
};

std::atomic<bool> g_stop{false};
std::atomic<int64_t> g_max_gap_ns{0};

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
  uint64_t extra_bytes = 0;  // peak cgroup charge beyond the baseline
  std::string mode;
  uint32_t not_captured = 0;  // threads that did not stop in time (recorded from /proc)
};

struct Measure {
  const BenchCgroup& cg;
  uint64_t base = 0;
  Clock::time_point t0;
  explicit Measure(const BenchCgroup& c) : cg(c) {
    if (cg.active()) {
      cg.DropCache();
      base = cg.Usage();
      cg.ResetPeak();
    }
    g_max_gap_ns.store(0);
    t0 = Clock::now();
  }
  void Finish(Sample* s) const {
    s->total_s = std::chrono::duration<double>(Clock::now() - t0).count();
    s->gap_ms = static_cast<double>(g_max_gap_ns.load()) / 1e6;
    if (cg.active()) {
      uint64_t peak = cg.Peak();
      s->extra_bytes = peak > base ? peak - base : 0;
    }
  }
};

Sample SelfDump(dump::SelfDumpMode mode, const std::string& path, const BenchCgroup& cg) {
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

Sample Gcore(const std::string& path, const BenchCgroup& cg) {
  std::string pid = std::to_string(::getpid());
  std::vector<std::string> args = {
      "gdb", "-batch", "-nx", "-ex",          "set debuginfod enabled off",
      "-p",  pid,      "-ex", "gcore " + path};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  Sample s;
  Measure m(cg);
  pid_t child = -1;
  int err = posix_spawnp(&child, "gdb", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) {
    std::fprintf(stderr, "cannot run gdb: %s\n", std::strerror(err));
    return s;
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  m.Finish(&s);
  s.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && ::access(path.c_str(), F_OK) == 0;
  ::unlink(path.c_str());
  if (!s.ok) std::fprintf(stderr, "gcore failed (status %d)\n", status);
  s.mode = "ptrace";
  return s;
}

void PrintRow(const char* name, const Sample& s, bool cgroup) {
  if (!s.ok) {
    std::printf("  %-22s failed\n", name);
    return;
  }
  char reported[32] = "-";
  if (s.reported_ms > 0) std::snprintf(reported, sizeof reported, "%.1f ms", s.reported_ms);
  std::printf("  %-16s pause %9.1f ms (reported %10s)  total %7.2f s", name, s.gap_ms, reported,
              s.total_s);
  if (cgroup) std::printf("  peak extra memory %s", Mib(s.extra_bytes).c_str());
  if (s.not_captured != 0) std::printf("  (%u threads did not stop in time)", s.not_captured);
  std::printf("\n");
}

int RunSize(const Options& o, size_t mb, const BenchCgroup& cg) {
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
  Sample fork = SelfDump(dump::SelfDumpMode::kFork, base + ".fork", cg);
  Sample suspend, gcore;
  if (o.suspend) suspend = SelfDump(dump::SelfDumpMode::kSuspend, base + ".suspend", cg);
  if (o.gcore) gcore = Gcore(base + ".gcore", cg);

  g_stop = true;
  heartbeat.join();
  mutator.join();
  ::close(pipe_fds[1]);
  for (auto& t : threads) t.join();
  ::close(pipe_fds[0]);
  ::munmap(mem, bytes);

  std::printf("%zu MiB resident, %d threads (+ heartbeat, mutator at %llu MiB/s), full dumps:\n",
              mb, o.threads + 1, static_cast<unsigned long long>(o.mutate_mbps));
  PrintRow("cppdiag fork", fork, cg.active());
  if (o.suspend) PrintRow("cppdiag suspend", suspend, cg.active());
  if (o.gcore) PrintRow("gdb gcore", gcore, cg.active());
  if (fork.ok && gcore.ok && fork.gap_ms > 0) {
    std::printf("  ratio gcore pause / cppdiag fork pause: %.0fx (goal: >= 50x)\n",
                gcore.gap_ms / fork.gap_ms);
  }
  if (fork.ok && suspend.ok && fork.gap_ms > 0) {
    std::printf("  ratio cppdiag suspend pause / fork pause: %.0fx\n",
                suspend.gap_ms / fork.gap_ms);
  }
  std::fflush(stdout);
  return fork.ok ? 0 : 1;
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
    } else if (a == "--no-gcore") {
      o.gcore = false;
    } else if (a == "--no-suspend") {
      o.suspend = false;
    } else if (a == "--mutate-mbps") {
      o.mutate_mbps = std::strtoull(next().c_str(), nullptr, 10);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--sizes MiB,MiB] [--threads N] [--dir D] [--no-gcore] "
                   "[--no-suspend] [--mutate-mbps N]\n",
                   argv[0]);
      return 2;
    }
  }
  BenchCgroup cg;
  if (!cg.Create("cppdiag-pause-bench"))
    std::fprintf(stderr, "no v1 memory cgroup: peak extra memory not measured\n");
  dump::SelfDumpConfig config;
  config.default_type = cppdiag::DumpType::kFull;
  config.name_template = o.dir + "/pause-bench.%p";
  if (auto st = dump::PrepareSelfDump(config); !st) {
    std::fprintf(stderr, "PrepareSelfDump: %s\n", st.error().message().c_str());
    return 1;
  }
  std::printf(
      "pause_bench: pause = the longest gap of a heartbeat thread (100 us beats) in the\n"
      "target during the dump; one run per size; files in %s\n",
      o.dir.c_str());
  int rc = 0;
  for (size_t mb : o.sizes_mb) rc |= RunSize(o, mb, cg);
  return rc;
}
