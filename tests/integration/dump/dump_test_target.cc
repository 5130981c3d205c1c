// The process the dump integration tests dump: it starts worker threads
// (parked in read(), and one spinning), fills a heap of the requested size
// with non-zero bytes, writes a marker string into a heap buffer, then does
// what argv[1] says:
//
//   dump                 self-dump on request, print the result, exit 0
//   segv | segv-thread   write through a bad pointer (main thread | a worker)
//   segv-two             two workers crash at the same moment
//   abort                std::abort()
//   throw                an uncaught std::runtime_error
//   bad_alloc            an uncaught std::bad_alloc from operator new
//   wait                 print READY and wait for stdin to close (for gcore)
//
// Options: --threads N, --heap-mb M, --marker-seed S (the marker is
// MarkerFor(S), built in the heap, never on the stack or in argv),
// --type full|heap|mini|triage, --path P (dump: explicit final path),
// --name TEMPLATE (else CPPDIAG_DUMP_NAME), --run-as UID (--non-dumpable 1:
// and stay non-dumpable, as a uid change leaves it), --go-fifo F (after READY,
// wait for a byte on the FIFO F before acting), --blocked-threads N
// (threads that block every signal: they cannot be stopped), --second-type T
// and --second-path P (dump: a second dump of the same process), --mode
// suspend|fork (dump: how the threads are held).
//
// Memory the dump rules are tested on: --secret-seed S (a MAP_PRIVATE
// anonymous region of --dontdump-mb M MiB, non-zero, marker S at its start,
// then MADV_DONTDUMP), --shared-seed S (marker S in a MAP_SHARED anonymous
// page), --map-file F (F mapped private and read-only, never written),
// --coredump-filter HEX (written to /proc/self/coredump_filter before acting),
// --kernel-core 1 (RLIMIT_CORE unlimited: the kernel writes its own core when
// the signal kills the process), --own-handler 1 (before the crash handler,
// install a SIGSEGV/SIGABRT handler that prints "OWN-HANDLER sig=<n>" and
// exits 42), --print-dontdump 1 (after READY, print "DONTDUMP <start>-<end>"
// in hex for every mapping smaps shows as dd: the dumper's own buffers too).
//
// Output, one line each: "READY pid=<pid> threads=<n>", then for dump
// "DUMP rc=<errno> path=<path> size=<bytes> threads=<n> not_captured=<n> failed=<call>".
#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "diag/dump/crash_handler.h"
#include "diag/dump/self_dump.h"
#include "marker.h"

namespace {

using cppdiag::dump_test::WriteMarker;

using cppdiag::DumpType;
namespace dump = cppdiag::dump;

// Keeps calls from being turned into jumps, so every named frame stays.
#define KEEP_FRAME() asm volatile("" ::: "memory")

std::atomic<bool> g_stop{false};
int g_park_pipe[2] = {-1, -1};
// The parked workers' thread ids, so that main can wait until each is in
// read() (a latch counted down before the call leaves a window in which a
// loaded machine dumps a worker that has not got there yet).
constexpr int kMaxParked = 64;
std::atomic<pid_t> g_parked[kMaxParked] = {};
volatile uintptr_t g_bad_address = 16;
void* volatile g_sink = nullptr;
volatile size_t g_huge = size_t{1} << 60;

struct Options {
  std::string action;
  int threads = 4;
  size_t heap_mb = 16;
  uint64_t marker_seed = 0;
  std::optional<DumpType> type;
  std::string path;
  std::string name;
  int run_as = -1;
  int blocked_threads = 0;
  bool non_dumpable = false;
  std::string go_fifo;
  std::optional<DumpType> second_type;
  std::string second_path;
  dump::SelfDumpMode mode = dump::SelfDumpMode::kSuspend;
  uint64_t secret_seed = 0;
  size_t dontdump_mb = 1;
  uint64_t shared_seed = 0;
  std::string map_file;
  std::string coredump_filter;
  bool kernel_core = false;
  bool own_handler = false;
  bool print_dontdump = false;
};

std::optional<DumpType> ParseType(const std::string& s) {
  if (s == "full") return DumpType::kFull;
  if (s == "heap") return DumpType::kHeap;
  if (s == "mini") return DumpType::kMini;
  if (s == "triage") return DumpType::kTriage;
  return std::nullopt;
}

__attribute__((noinline)) void ParkWorkerInRead() {
  char c;
  while (::read(g_park_pipe[0], &c, 1) > 0) {
  }
  KEEP_FRAME();
}

__attribute__((noinline)) void SpinWorker() {
  while (!g_stop.load(std::memory_order_relaxed)) {
    KEEP_FRAME();
  }
}

__attribute__((noinline)) void CrashWithBadWrite() {
  *reinterpret_cast<volatile int*>(g_bad_address) = 42;
  KEEP_FRAME();
}

// Blocks every signal, so the capture signal never arrives: the dump must
// record this thread from /proc.
__attribute__((noinline)) void BlockedWorker() {
  sigset_t all;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
  ParkWorkerInRead();
  KEEP_FRAME();
}

__attribute__((noinline)) void WorkerThreadMain(int index, std::latch* started, std::latch* go,
                                                bool crash, bool blocked) {
  bool parks = !crash && !blocked && index != 0;
  if (parks && index < kMaxParked) g_parked[index] = ::gettid();  // before main may look
  started->count_down();
  if (crash) {
    go->wait();  // crash once main is READY
    CrashWithBadWrite();
  } else if (blocked) {
    BlockedWorker();
  } else if (index == 0) {
    SpinWorker();
  } else {
    ParkWorkerInRead();
  }
  KEEP_FRAME();
}

// Until every parked worker sleeps in read (syscall 0 in its
// /proc/self/task/<tid>/syscall), at most 10 s.
void WaitUntilParked() {
  for (int i = 0; i < kMaxParked; ++i) {
    pid_t tid = g_parked[i].load();
    if (tid == 0) continue;
    std::string path = "/proc/self/task/" + std::to_string(tid) + "/syscall";
    for (int tries = 0; tries < 10000; ++tries) {
      char buf[32] = {};
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      ssize_t n = fd < 0 ? -1 : ::read(fd, buf, sizeof buf - 1);
      if (fd >= 0) ::close(fd);
      if (n > 1 && buf[0] == '0' && buf[1] == ' ') break;
      ::usleep(1000);
    }
  }
}

__attribute__((noinline)) void CallAbort() { std::abort(); }

__attribute__((noinline)) void ThrowUncaught() {
  throw std::runtime_error("cppdiag test: nobody catches this");
}

__attribute__((noinline)) void AllocateTooMuch() {
  g_sink = ::operator new(g_huge);
  KEEP_FRAME();
}

int CountThreads() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  int n = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "Threads:", 8) == 0) n = std::atoi(line + 8);
  }
  std::fclose(f);
  return n;
}

// The program's own crash handler, installed before cppdiag's: cppdiag must
// chain to it after its dump. Async-signal-safe.
void OwnCrashHandler(int sig, siginfo_t*, void*) {
  char line[] = "OWN-HANDLER sig=00\n";
  line[16] = static_cast<char>('0' + sig / 10);
  line[17] = static_cast<char>('0' + sig % 10);
  (void)!::write(STDOUT_FILENO, line, sizeof line - 1);
  ::_exit(42);
}

bool InstallOwnCrashHandler() {
  struct sigaction sa {};
  sa.sa_sigaction = &OwnCrashHandler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  return ::sigaction(SIGSEGV, &sa, nullptr) == 0 && ::sigaction(SIGABRT, &sa, nullptr) == 0;
}

// The memory of --secret-seed, --shared-seed and --map-file; false on failure.
bool MapTestMemory(const Options& o) {
  if (o.secret_seed != 0) {
    size_t len = std::max<size_t>(o.dontdump_mb, 1) << 20;
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    std::memset(p, 0x5a, len);
    WriteMarker(o.secret_seed, static_cast<char*>(p));
    if (::madvise(p, len, MADV_DONTDUMP) != 0) return false;
  }
  if (o.shared_seed != 0) {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    WriteMarker(o.shared_seed, static_cast<char*>(p));
  }
  if (!o.map_file.empty()) {
    int fd = ::open(o.map_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    void* p = ::mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) return false;
    g_sink = p;
  }
  if (!o.coredump_filter.empty()) {
    int fd = ::open("/proc/self/coredump_filter", O_WRONLY | O_CLOEXEC);
    bool ok = fd >= 0 && ::write(fd, o.coredump_filter.data(), o.coredump_filter.size()) ==
                             static_cast<ssize_t>(o.coredump_filter.size());
    if (fd >= 0) ::close(fd);
    if (!ok) return false;
  }
  if (o.kernel_core) {
    rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_CORE, &unlimited) != 0) return false;
  }
  return true;
}

void PrintDontDumpMappings() {
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (f == nullptr) return;
  char line[4096], range[64] = {};
  while (std::fgets(line, sizeof line, f) != nullptr) {
    bool maps_line = (line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f');
    if (maps_line) {
      std::sscanf(line, "%63s", range);
    } else if (std::strncmp(line, "VmFlags:", 8) == 0 && std::strstr(line, " dd") != nullptr) {
      std::printf("DONTDUMP %s\n", range);
    }
  }
  std::fclose(f);
}

__attribute__((noinline)) int RequestDumpFromMain(std::optional<DumpType> type,
                                                  const std::string& path,
                                                  dump::SelfDumpMode mode) {
  dump::SelfDumpRequest req;
  req.type = type;
  req.mode = mode;
  req.reason = "on-demand";
  req.path = path.empty() ? nullptr : path.c_str();
  dump::SelfDumpResult res;
  int rc = dump::WriteSelfDump(req, &res);
  std::printf("DUMP rc=%d path=%s size=%llu threads=%u not_captured=%u failed=%s\n", rc, res.path,
              static_cast<unsigned long long>(res.size_bytes), res.threads,
              res.threads_not_captured, res.failed_call[0] ? res.failed_call : "-");
  std::fflush(stdout);
  KEEP_FRAME();
  return rc;
}

bool DropPrivileges(int uid, bool non_dumpable) {
  if (::setgroups(0, nullptr) != 0 || ::setresgid(uid, uid, uid) != 0 ||
      ::setresuid(uid, uid, uid) != 0) {
    return false;
  }
  // A uid change makes the process non-dumpable, which hides /proc/self/mem
  // and /proc/self/pagemap from it; a service started as that user would be
  // dumpable, unless it asks not to be (--non-dumpable keeps it so).
  return non_dumpable || ::prctl(PR_SET_DUMPABLE, 1) == 0;
}

int Run(const Options& o) {
  if (o.run_as >= 0 && !DropPrivileges(o.run_as, o.non_dumpable)) {
    std::perror("drop privileges");
    return 2;
  }
  if (o.own_handler && !InstallOwnCrashHandler()) {
    std::perror("own crash handler");
    return 2;
  }
  dump::SelfDumpConfig config;
  config.default_type = o.type.value_or(DumpType::kHeap);
  const char* env_name = std::getenv("CPPDIAG_DUMP_NAME");
  config.name_template = !o.name.empty() ? o.name : env_name != nullptr ? env_name : "";
  if (auto st = dump::PrepareSelfDump(config); !st) {
    std::fprintf(stderr, "PrepareSelfDump: %s\n", st.error().message().c_str());
    return 2;
  }
  if (auto st = dump::InstallCrashHandler({.type = o.type}); !st) {
    std::fprintf(stderr, "InstallCrashHandler: %s\n", st.error().message().c_str());
    return 2;
  }

  std::vector<char*> heap;
  for (size_t i = 0; i < o.heap_mb; ++i) {
    auto* block = static_cast<char*>(std::malloc(1 << 20));
    std::memset(block, static_cast<int>((i & 0x7f) | 1), 1 << 20);
    heap.push_back(block);
  }
  char* marker = nullptr;
  if (o.marker_seed != 0) {
    marker = static_cast<char*>(std::malloc(4096));
    WriteMarker(o.marker_seed, marker);
  }
  if (!MapTestMemory(o)) {
    std::perror("test memory");
    return 2;
  }

  if (::pipe2(g_park_pipe, O_CLOEXEC) != 0) return 2;
  int crashers = o.action == "segv-thread" ? 1 : o.action == "segv-two" ? 2 : 0;
  int total = o.threads + o.blocked_threads;
  std::latch started(total);
  std::latch go(1);
  std::vector<std::thread> workers;
  for (int i = 0; i < total; ++i) {
    bool crash = i >= o.threads - crashers && i < o.threads;
    bool blocked = i >= o.threads;
    workers.emplace_back(WorkerThreadMain, i, &started, &go, crash, blocked);
  }
  started.wait();
  WaitUntilParked();
  std::printf("READY pid=%d threads=%d\n", ::getpid(), CountThreads());
  if (o.print_dontdump) PrintDontDumpMappings();
  std::fflush(stdout);

  if (!o.go_fifo.empty()) {  // wait for the test's go: a byte on the FIFO
    int fd = ::open(o.go_fifo.c_str(), O_RDONLY | O_CLOEXEC);
    char c;
    if (fd < 0 || ::read(fd, &c, 1) != 1) return 2;
    ::close(fd);
  }
  go.count_down();
  int rc = 0;
  if (o.action == "dump") {
    rc = RequestDumpFromMain(o.type, o.path, o.mode) == 0 ? 0 : 1;
    if (rc == 0 && o.second_type) {
      rc = RequestDumpFromMain(o.second_type, o.second_path, o.mode) ? 1 : 0;
    }
  } else if (o.action == "segv") {
    CrashWithBadWrite();
  } else if (o.action == "segv-thread" || o.action == "segv-two") {
    workers[o.threads - 1].join();  // the process dies before this returns
  } else if (o.action == "abort") {
    CallAbort();
  } else if (o.action == "throw") {
    ThrowUncaught();
  } else if (o.action == "bad_alloc") {
    AllocateTooMuch();
  } else if (o.action == "wait") {
    char c;
    while (::read(STDIN_FILENO, &c, 1) > 0) {
    }
  } else {
    std::fprintf(stderr, "unknown action %s\n", o.action.c_str());
    rc = 2;
  }
  g_stop = true;
  ::close(g_park_pipe[1]);
  for (auto& w : workers) {
    if (w.joinable()) w.join();
  }
  std::free(marker);
  for (char* b : heap) std::free(b);
  std::printf("EXIT rc=%d\n", rc);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s dump|segv|segv-thread|segv-two|abort|throw|bad_alloc|wait [options]\n",
                 argv[0]);
    return 2;
  }
  Options o;
  o.action = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--threads") {
      o.threads = std::atoi(v.c_str());
    } else if (k == "--heap-mb") {
      o.heap_mb = std::strtoull(v.c_str(), nullptr, 10);
    } else if (k == "--marker-seed") {
      o.marker_seed = std::strtoull(v.c_str(), nullptr, 10);
    } else if (k == "--type") {
      o.type = ParseType(v);
      if (!o.type) {
        std::fprintf(stderr, "bad type %s\n", v.c_str());
        return 2;
      }
    } else if (k == "--path") {
      o.path = v;
    } else if (k == "--name") {
      o.name = v;
    } else if (k == "--run-as") {
      o.run_as = std::atoi(v.c_str());
    } else if (k == "--go-fifo") {
      o.go_fifo = v;
    } else if (k == "--non-dumpable") {
      o.non_dumpable = v == "1";
    } else if (k == "--blocked-threads") {
      o.blocked_threads = std::atoi(v.c_str());
    } else if (k == "--second-type") {
      o.second_type = ParseType(v);
    } else if (k == "--second-path") {
      o.second_path = v;
    } else if (k == "--mode") {
      o.mode = v == "fork" ? dump::SelfDumpMode::kFork : dump::SelfDumpMode::kSuspend;
    } else if (k == "--secret-seed") {
      o.secret_seed = std::strtoull(v.c_str(), nullptr, 10);
    } else if (k == "--dontdump-mb") {
      o.dontdump_mb = std::strtoull(v.c_str(), nullptr, 10);
    } else if (k == "--shared-seed") {
      o.shared_seed = std::strtoull(v.c_str(), nullptr, 10);
    } else if (k == "--map-file") {
      o.map_file = v;
    } else if (k == "--coredump-filter") {
      o.coredump_filter = v;
    } else if (k == "--kernel-core") {
      o.kernel_core = v == "1";
    } else if (k == "--own-handler") {
      o.own_handler = v == "1";
    } else if (k == "--print-dontdump") {
      o.print_dontdump = v == "1";
    } else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  return Run(o);
}
