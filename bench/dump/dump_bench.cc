// dump_bench: time and memory of cppdiag's self-dump against gdb's gcore on
// the same process (see dump_bench.md).
//
// The process touches --mb MiB of non-zero memory and starts --threads
// threads, then, --runs times: writes a full and a heap self-dump, and has
// `gdb -batch -p <self> -ex gcore` dump it. For each it reports the time,
// the file's size, the extra peak RSS of the process that dumped (this
// process for cppdiag, gdb for gcore), and with --cgroup the peak charge of a
// memory cgroup holding both (page cache included).
#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <latch>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_cgroup.h"
#include "common/cgroup.h"
#include "common/io.h"
#include "common/parse.h"
#include "common/proc.h"
#include "diag/dump/self_dump.h"

extern char** environ;

namespace {

using cppdiag::bench::BenchCgroup;
using cppdiag::bench::Mib;

using Clock = std::chrono::steady_clock;
namespace dump = cppdiag::dump;

struct Options {
  size_t mb = 1024;
  int threads = 4;
  int runs = 3;
  std::string dir = "/tmp";
  bool keep = false;
  bool gcore = true;
  bool cgroup = false;
};

struct Sample {
  double seconds = 0;
  double fsync_seconds = 0;  // gcore: the fsync of its file afterwards
  uint64_t size = 0;
  uint64_t allocated = 0;
  uint64_t extra_rss = 0;      // the dumping process's peak RSS beyond what it had
  uint64_t cgroup_charge = 0;  // peak cgroup charge beyond the baseline
};

uint64_t StatusField(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0)
      return std::strtoull(line.c_str() + strlen(key), nullptr, 10) * 1024;
  }
  return 0;
}

// Resets VmHWM to the current RSS (Linux >= 4.0).
void ResetPeakRss() { (void)cppdiag::WriteStringToFile("/proc/self/clear_refs", "5"); }

uint64_t Allocated(const std::string& path, uint64_t* size) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  *size = static_cast<uint64_t>(st.st_size);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

std::optional<Sample> SelfDump(cppdiag::DumpType type, const std::string& path,
                               const BenchCgroup& cg) {
  dump::SelfDumpRequest req;
  req.type = type;
  req.reason = "bench";
  req.path = path.c_str();
  dump::SelfDumpResult res;
  uint64_t rss = StatusField("VmRSS:");
  uint64_t base = cg.active() ? cg.Usage() : 0;
  ResetPeakRss();
  if (cg.active()) cg.ResetPeak();
  auto t0 = Clock::now();
  int err = dump::WriteSelfDump(req, &res);
  auto t1 = Clock::now();
  if (err != 0) {
    std::fprintf(stderr, "self-dump failed: %s: %s\n", res.failed_call, std::strerror(err));
    return std::nullopt;
  }
  Sample s;
  s.seconds = std::chrono::duration<double>(t1 - t0).count();
  uint64_t hwm = StatusField("VmHWM:");
  s.extra_rss = hwm > rss ? hwm - rss : 0;
  if (cg.active()) s.cgroup_charge = cg.Peak() > base ? cg.Peak() - base : 0;
  s.allocated = Allocated(path, &s.size);
  return s;
}

std::optional<Sample> Gcore(const std::string& path, const BenchCgroup& cg) {
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
  uint64_t base = cg.active() ? cg.Usage() : 0;
  if (cg.active()) cg.ResetPeak();
  auto t0 = Clock::now();
  pid_t child = -1;
  int err = posix_spawnp(&child, "gdb", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) {
    std::fprintf(stderr, "cannot run gdb: %s\n", std::strerror(err));
    return std::nullopt;
  }
  int status = 0;
  rusage ru{};
  ::wait4(child, &status, 0, &ru);
  auto t1 = Clock::now();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || ::access(path.c_str(), F_OK) != 0) {
    std::fprintf(stderr, "gcore failed (status %d)\n", status);
    return std::nullopt;
  }
  Sample s;
  s.seconds = std::chrono::duration<double>(t1 - t0).count();
  s.extra_rss = static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // all of gdb's memory is extra
  if (cg.active()) s.cgroup_charge = cg.Peak() > base ? cg.Peak() - base : 0;
  // gcore does not fsync; ours does. Time what it takes to make its file durable.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  auto f0 = Clock::now();
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  s.fsync_seconds = std::chrono::duration<double>(Clock::now() - f0).count();
  s.allocated = Allocated(path, &s.size);
  return s;
}

Sample Median(std::vector<Sample> v) {
  std::sort(v.begin(), v.end(),
            [](const Sample& a, const Sample& b) { return a.seconds < b.seconds; });
  return v[v.size() / 2];
}

void PrintRow(const char* name, const Sample& s, bool cgroup) {
  std::printf("  %-22s %7.3f s  %11s file (%11s on disk)  extra RSS %10s", name, s.seconds,
              Mib(s.size).c_str(), Mib(s.allocated).c_str(), Mib(s.extra_rss).c_str());
  if (cgroup) std::printf("  cgroup peak +%s", Mib(s.cgroup_charge).c_str());
  std::printf("\n");
}

int Run(const Options& o) {
  BenchCgroup cg;
  if (o.cgroup) cg.Create("cppdiag-bench");

  // The memory to dump: touched, non-zero, different on every page.
  size_t bytes = o.mb << 20;
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

  uint64_t rss_before_prepare = StatusField("VmRSS:");
  dump::SelfDumpConfig config;
  config.default_type = cppdiag::DumpType::kFull;
  config.name_template = o.dir + "/dump-bench.%p";
  if (auto st = dump::PrepareSelfDump(config); !st) {
    std::fprintf(stderr, "PrepareSelfDump: %s\n", st.error().message().c_str());
    return 1;
  }
  uint64_t reserved = StatusField("VmRSS:") - rss_before_prepare;

  std::vector<Sample> full, heap, gcore;
  std::string base = o.dir + "/dump-bench." + std::to_string(::getpid());
  for (int r = 0; r < o.runs; ++r) {
    if (auto s = SelfDump(cppdiag::DumpType::kFull, base + ".full", cg)) full.push_back(*s);
    if (!o.keep) ::unlink((base + ".full").c_str());
    if (auto s = SelfDump(cppdiag::DumpType::kHeap, base + ".heap", cg)) heap.push_back(*s);
    if (!o.keep) ::unlink((base + ".heap").c_str());
    if (o.gcore) {
      if (auto s = Gcore(base + ".gcore", cg)) gcore.push_back(*s);
      if (!o.keep) ::unlink((base + ".gcore").c_str());
    }
  }
  ::close(pipe_fds[1]);
  for (auto& t : threads) t.join();
  if (full.empty() || heap.empty()) return 1;

  std::printf("dump_bench: %zu MiB touched, %d threads, %d run(s), median shown, files in %s\n",
              o.mb, o.threads + 1, o.runs, o.dir.c_str());
  std::printf("  cppdiag buffers reserved at PrepareSelfDump: %s (RSS)\n", Mib(reserved).c_str());
  Sample f = Median(full), h = Median(heap);
  PrintRow("cppdiag full", f, cg.active());
  PrintRow("cppdiag heap", h, cg.active());
  if (!gcore.empty()) {
    Sample g = Median(gcore);
    PrintRow("gdb gcore", g, cg.active());
    std::printf("  %-22s %7.3f s  (gcore does not fsync; cppdiag does)\n", "gdb gcore + fsync",
                g.seconds + g.fsync_seconds);
    std::printf(
        "  ratio gcore / cppdiag full: %.2fx (with fsync: %.2fx); gcore / cppdiag heap: "
        "%.2fx (with fsync: %.2fx)\n",
        g.seconds / f.seconds, (g.seconds + g.fsync_seconds) / f.seconds, g.seconds / h.seconds,
        (g.seconds + g.fsync_seconds) / h.seconds);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--mb") {
      o.mb = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--threads") {
      o.threads = std::atoi(next().c_str());
    } else if (a == "--runs") {
      o.runs = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--dir") {
      o.dir = next();
    } else if (a == "--keep") {
      o.keep = true;
    } else if (a == "--no-gcore") {
      o.gcore = false;
    } else if (a == "--cgroup") {
      o.cgroup = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--mb N] [--threads N] [--runs N] [--dir D] [--keep] [--no-gcore] "
                   "[--cgroup]\n",
                   argv[0]);
      return 2;
    }
  }
  return Run(o);
}
