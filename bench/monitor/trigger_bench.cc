// trigger_bench: how far past its threshold a leaking process has grown
// when `cppdiag monitor --cgroup-memory` starts its dump: woken by the
// cgroup v1 usage threshold event, by our 100 ms poll, and by a 1 s poll
// (ProcDump's period). See trigger_bench.md.
//
// The benchmark's forked child is the target: in a fresh v1 memory cgroup
// with a limit, it maps and touches one MiB at a time at --rate MiB/s
// (paced against the clock) and counts them in g_leaked_mib. Its chunks are
// MADV_DONTDUMP, so the `heap` dump the monitor writes is small and holds
// g_leaked_mib as it was the moment the dump's snapshot was taken (the
// child is a fork: the variable has the same address as ours, read from the
// core's PT_LOAD segments). Usage at the dump = the cgroup's usage before
// the leak + g_leaked_mib MiB. The poll rows run the monitor in a mount
// namespace whose cgroupfs is read-only, so it cannot register the event
// and polls (as in a container): the product's own fallback, not a switch.
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/cgroup.h"
#include "common/io.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kMiB = 1u << 20;

volatile long g_leaked_mib;  // the child's count, read from its dump

struct Options {
  std::string cppdiag = CPPDIAG_BINARY;
  int runs = 5;
  double rate = 100;                                   // MiB/s
  std::vector<uint64_t> thresholds = {200, 300, 400};  // MiB
  uint64_t limit_mib = 1000;
  std::string dir = "/tmp";
};

struct Mode {
  const char* name;
  const char* poll;
  bool events;      // false: the cgroupfs is read-only, the monitor polls
  double period_s;  // the poll's, or a second for the event (the phase is then moot)
};

// One leaking child in its cgroup; killed and its cgroup removed on scope exit.
class Target {
 public:
  Target(const std::string& parent, uint64_t limit, double rate, long total) {
    dir_ = parent + "/trigger-bench-" + std::to_string(::getpid());
    ::mkdir(dir_.c_str(), 0755);
    ok_ = cppdiag::WriteStringToFile(dir_ + "/memory.limit_in_bytes", std::to_string(limit)).ok();
    int ready[2], go[2];
    if (!ok_ || ::pipe(ready) != 0 || ::pipe(go) != 0) {
      ok_ = false;
      return;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ready[0]);
      ::close(go[1]);
      std::string self = std::to_string(::getpid());
      int fd = ::open((dir_ + "/cgroup.procs").c_str(), O_WRONLY);
      if (fd < 0 || ::write(fd, self.data(), self.size()) < 0) _exit(3);
      ::close(fd);
      char c = 1;
      if (::write(ready[1], &c, 1) != 1 || ::read(go[0], &c, 1) != 1) _exit(4);
      const auto start = Clock::now();
      for (long i = 0; i < total; ++i) {
        void* p = ::mmap(nullptr, kMiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) _exit(5);
        ::madvise(p, kMiB, MADV_DONTDUMP);
        std::memset(p, 0x5a, kMiB);
        g_leaked_mib = i + 1;
        std::this_thread::sleep_until(start + std::chrono::duration<double>((i + 1) / rate));
      }
      for (;;) ::pause();
    }
    ::close(ready[1]);
    ::close(go[0]);
    go_ = go[1];
    char c;
    ok_ = pid_ > 0 && ::read(ready[0], &c, 1) == 1;
    ::close(ready[0]);
  }
  ~Target() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (go_ >= 0) ::close(go_);
    ::rmdir(dir_.c_str());
  }
  bool ok() const { return ok_; }
  pid_t pid() const { return pid_; }
  void Go() const { (void)!::write(go_, "g", 1); }
  uint64_t Usage() const {
    auto s = cppdiag::ReadFileToString(dir_ + "/memory.usage_in_bytes");
    return s ? std::strtoull(s->c_str(), nullptr, 10) : 0;
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  int go_ = -1;
  bool ok_ = false;
};

// The mount point of the cgroup filesystem that holds `dir`.
std::string MountOf(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string best;
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string id, parent, devs, root, point;
    f >> id >> parent >> devs >> root >> point;
    if (line.find(" - cgroup") != std::string::npos && dir.rfind(point + "/", 0) == 0 &&
        point.size() > best.size())
      best = point;
  }
  return best;
}

// The 8 bytes at `addr` in the memory of core file `path`.
std::optional<long> ReadCoreWord(const std::string& path, uintptr_t addr) {
  cppdiag::ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  Elf64_Ehdr eh;
  if (!fd.is_valid() || ::pread(fd.get(), &eh, sizeof eh, 0) != sizeof eh) return std::nullopt;
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    if (::pread(fd.get(), &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof ph)) !=
        sizeof ph)
      return std::nullopt;
    if (ph.p_type != PT_LOAD || addr < ph.p_vaddr || addr + 8 > ph.p_vaddr + ph.p_filesz) continue;
    long v;
    if (::pread(fd.get(), &v, sizeof v, static_cast<off_t>(ph.p_offset + (addr - ph.p_vaddr))) !=
        sizeof v)
      return std::nullopt;
    return v;
  }
  return std::nullopt;
}

struct Run {
  double at_dump_mib = 0;  // usage when the dump's snapshot was taken
  double read_mib = 0;     // the usage the monitor read when it fired
  double latency_ms = 0;   // leak start to the firing line
};

// One monitor run against a fresh leaking target; nullopt (said) on failure.
std::optional<Run> RunOnce(const Options& o, const Mode& m, uint64_t threshold_mib,
                           const std::string& parent, const std::string& mount) {
  const uint64_t limit = o.limit_mib * kMiB;
  Target t(parent, limit, o.rate, static_cast<long>(threshold_mib + 2 * o.rate + 100));
  if (!t.ok()) {
    std::fprintf(stderr, "trigger_bench: cannot start the target in %s\n", parent.c_str());
    return std::nullopt;
  }
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.6g",
                100.0 * static_cast<double>(threshold_mib) / static_cast<double>(o.limit_mib));
  std::vector<std::string> argv;
  if (!m.events) {
    argv = {"unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -o remount,bind,ro \"$0\" && exec \"$@\"",
            mount};
  }
  argv.insert(argv.end(), {o.cppdiag, "monitor", "-p", std::to_string(t.pid()), "--cgroup-memory",
                           pct, "--poll", m.poll, "-o", o.dir, "--type", "heap"});
  int out[2];
  if (::pipe(out) != 0) return std::nullopt;
  pid_t mon = ::fork();
  if (mon == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::close(out[1]);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  ::close(out[1]);
  std::string text;
  auto read_until = [&](const std::string& needle) {
    char buf[4096];
    while (needle.empty() || text.find(needle) == std::string::npos) {
      ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) return false;
      text.append(buf, static_cast<size_t>(n));
    }
    return true;
  };
  std::optional<Run> r;
  if (read_until("Monitoring process")) {
    // The leak starts at a random point of the poll period, as a real one
    // would: started in step with the poll, every crossing would fall just
    // before a sample and a poll would look as good as the event.
    static std::mt19937 rng(std::random_device{}());
    std::this_thread::sleep_for(std::chrono::duration<double>(
        std::uniform_real_distribution<double>(0, 1)(rng) * m.period_s));
    const uint64_t before = t.Usage();
    const auto start = Clock::now();
    t.Go();
    const bool fired = read_until(" cgroup-memory ");
    const auto fired_at = Clock::now();
    read_until("");  // to the end: the monitor exits after its one dump
    std::smatch sm;
    static const std::regex kLine(R"( cgroup-memory ([0-9.]+)% >= \S+ (/\S+) \()");
    if (fired && std::regex_search(text, sm, kLine)) {
      const std::string core = sm[2];
      auto leaked = ReadCoreWord(core, reinterpret_cast<uintptr_t>(&g_leaked_mib));
      ::unlink(core.c_str());
      if (leaked) {
        r = Run{.at_dump_mib = static_cast<double>(before) / kMiB + static_cast<double>(*leaked),
                .read_mib = std::stod(sm[1]) / 100.0 * static_cast<double>(o.limit_mib),
                .latency_ms = std::chrono::duration<double, std::milli>(fired_at - start).count()};
      }
    }
  }
  ::close(out[0]);
  ::kill(mon, SIGTERM);
  ::waitpid(mon, nullptr, 0);
  if (!r) std::fprintf(stderr, "trigger_bench: %s run failed: %s\n", m.name, text.c_str());
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? NAN : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return false;
    std::string v = argv[++i];
    if (a == "--cppdiag") {
      o->cppdiag = v;
    } else if (a == "--runs") {
      o->runs = std::atoi(v.c_str());
    } else if (a == "--rate") {
      o->rate = std::atof(v.c_str());
    } else if (a == "--limit") {
      o->limit_mib = std::strtoull(v.c_str(), nullptr, 10);
    } else if (a == "--dir") {
      o->dir = v;
    } else if (a == "--thresholds") {
      o->thresholds.clear();
      for (std::stringstream s(v); std::getline(s, a, ',');)
        o->thresholds.push_back(std::strtoull(a.c_str(), nullptr, 10));
    } else {
      return false;
    }
  }
  if (o->runs < 1 || !(o->rate > 0) || o->thresholds.empty()) return false;
  for (uint64_t t : o->thresholds)
    if (t == 0 || t + 2 * o->rate + 100 >= o->limit_mib) return false;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) {
    std::fprintf(stderr,
                 "usage: trigger_bench [--runs N] [--rate MIB_PER_S] [--thresholds MIB,...] "
                 "[--limit MIB] [--dir D] [--cppdiag PATH] (threshold + 2 s of leak + 100 MiB "
                 "must fit under the limit)\n");
    return 2;
  }
  auto found = cppdiag::CgroupReader().FindMemoryCgroup();
  if (!found || found->first != 1) {
    std::fprintf(stderr, "trigger_bench: needs the cgroup v1 memory controller (and root)\n");
    return 1;
  }
  const std::string mount = MountOf(found->second);
  const Mode modes[] = {{"event (poll 10 s)", "10s", true, 1.0},
                        {"poll 100 ms", "100ms", false, 0.1},
                        {"poll 1 s", "1s", false, 1.0}};
  std::printf(
      "leak %.0f MiB/s, limit %llu MiB, %d runs each; overshoot = usage when the dump "
      "started - threshold\n\n",
      o.rate, static_cast<unsigned long long>(o.limit_mib), o.runs);
  std::printf(
      "| trigger | threshold | overshoot median | overshoot max | monitor's reading, "
      "median overshoot | leak start to firing line, median |\n");
  std::printf("|---|---|---|---|---|---|\n");
  int failed = 0;
  for (const Mode& m : modes) {
    for (uint64_t th : o.thresholds) {
      std::vector<double> over, read, latency;
      for (int i = 0; i < o.runs; ++i) {
        auto r = RunOnce(o, m, th, found->second, mount);
        if (!r) {
          ++failed;
          continue;
        }
        over.push_back(r->at_dump_mib - static_cast<double>(th));
        read.push_back(r->read_mib - static_cast<double>(th));
        latency.push_back(r->latency_ms);
      }
      const double med = Median(over);
      const double mx = over.empty() ? NAN : *std::max_element(over.begin(), over.end());
      const double pct = 100.0 / static_cast<double>(th);
      std::printf(
          "| %s | %llu MiB | %.1f MiB (%.1f %%) | %.1f MiB (%.1f %%) | %.1f MiB | %.0f ms |\n",
          m.name, static_cast<unsigned long long>(th), med, med * pct, mx, mx * pct, Median(read),
          Median(latency));
      std::fflush(stdout);
    }
  }
  if (failed) std::fprintf(stderr, "trigger_bench: %d runs failed\n", failed);
  return failed ? 1 : 0;
}
