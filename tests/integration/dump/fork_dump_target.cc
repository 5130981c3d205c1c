// The process the fork-mode dump tests dump. It fills a heap of the requested
// size, starts worker threads parked in read() and a heartbeat thread that
// measures the longest gap between its beats (how long it was stopped),
// writes marker A into the heap, then self-dumps from main with the requested
// mode. At the first progress call (the threads already run again while the
// child writes) it writes marker B into a heap buffer that held zeros and
// overwrites marker A with marker C: a snapshot holds A, never B or C; then
// it waits for three more heartbeats (beat_in_write=1): the threads run while
// the child writes.
//
//   fork_dump_target --mode fork|suspend|auto --path P [--heap-mb M]
//                    [--threads N] [--seed S] [--type full|heap]
//                    [--kill-writer 1] [--go-fifo F] [--nproc-limit N]
//
// --nproc-limit sets RLIMIT_NPROC just before the dump (run as a user that
// is not root, the clone then fails with EAGAIN).
//
// Output: "READY pid=<pid> tids=<t1,t2,...>" once the threads run, then
// "DUMP rc=<errno> mode=<m> reason=<...> pause_us=<n> duration_us=<n>
// max_gap_us=<n> beats=<n> progress_calls=<n> last_written=<n> last_total=<n>
// after_written=<0|1> beat_in_write=<0|1> size=<n> writer_signal=<n>
// failed=<call>", then
// "ALIVE beats=<n>" once the heartbeat ticked again after the dump.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
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

#define KEEP_FRAME() asm volatile("" ::: "memory")

int g_park_pipe[2] = {-1, -1};
std::atomic<bool> g_stop{false};
std::atomic<int64_t> g_max_gap_ns{0};
std::atomic<uint64_t> g_beats{0};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

__attribute__((noinline)) void ParkWorkerInRead() {
  char c;
  while (::read(g_park_pipe[0], &c, 1) > 0) {
  }
  KEEP_FRAME();
}

// Beats every millisecond; a stopped thread shows as one long gap.
__attribute__((noinline)) void HeartbeatMain() {
  int64_t last = NowNs();
  while (!g_stop.load(std::memory_order_relaxed)) {
    timespec ts{0, 1000 * 1000};
    ::nanosleep(&ts, nullptr);
    int64_t now = NowNs();
    int64_t gap = now - last;
    int64_t seen = g_max_gap_ns.load(std::memory_order_relaxed);
    while (gap > seen && !g_max_gap_ns.compare_exchange_weak(seen, gap)) {
    }
    last = now;
    g_beats.fetch_add(1, std::memory_order_relaxed);
    g_beats.notify_all();
  }
  KEEP_FRAME();
}

struct ProgressState {
  uint64_t seed = 0;
  char* marker_a = nullptr;
  char* marker_b = nullptr;
  bool kill_writer = false;
  int calls = 0;
  uint64_t last_written = 0, last_total = 0;
  bool after_written = false;
  bool beat_in_write = false;
};

// Blocks until the heartbeat has beaten `n` more times (no deadline: a
// heartbeat that never beats again hangs the target, and the test's wait
// for it fails).
void WaitForBeats(uint64_t n) {
  const uint64_t until = g_beats.load() + n;
  for (uint64_t now = g_beats.load(); now < until; now = g_beats.load()) g_beats.wait(now);
}

// Kills this process's child (the dump writer), found in /proc.
void KillChildren() {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%ld/children", ::syscall(SYS_gettid));
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return;
  int pid;
  while (std::fscanf(f, "%d", &pid) == 1) ::kill(pid, SIGKILL);
  std::fclose(f);
}

void OnProgress(void* context, uint64_t written, uint64_t total) {
  auto* st = static_cast<ProgressState*>(context);
  if (st->calls++ == 0) {
    WriteMarker(st->seed + 1, st->marker_b);  // B: a buffer that held zeros
    WriteMarker(st->seed + 2, st->marker_a);  // C over A
    st->after_written = true;
    if (st->kill_writer) KillChildren();
    // The writer child goes on meanwhile; the heartbeat can only beat if the
    // threads were let go before the write.
    WaitForBeats(3);
    st->beat_in_write = true;
  }
  st->last_written = written;
  st->last_total = total;
}

__attribute__((noinline)) int RequestForkDump(dump::SelfDumpMode mode, DumpType type,
                                              const char* path, ProgressState* ps) {
  dump::SelfDumpRequest req;
  req.type = type;
  req.path = path;
  req.mode = mode;
  req.progress = &OnProgress;
  req.progress_context = ps;
  req.progress_interval_ms = 1;
  dump::SelfDumpResult res;
  g_max_gap_ns.store(0);
  uint64_t beats_before = g_beats.load();
  int rc = dump::WriteSelfDump(req, &res);
  int64_t gap = g_max_gap_ns.load();
  std::printf(
      "DUMP rc=%d mode=%s reason=[%s] pause_us=%llu duration_us=%llu max_gap_us=%lld beats=%llu "
      "progress_calls=%d last_written=%llu last_total=%llu after_written=%d beat_in_write=%d "
      "size=%llu writer_signal=%d failed=%s\n",
      rc, dump::SelfDumpModeName(res.mode), res.mode_reason,
      static_cast<unsigned long long>(res.pause_ns / 1000),
      static_cast<unsigned long long>(res.duration_ns / 1000), static_cast<long long>(gap / 1000),
      static_cast<unsigned long long>(g_beats.load() - beats_before), ps->calls,
      static_cast<unsigned long long>(ps->last_written),
      static_cast<unsigned long long>(ps->last_total), ps->after_written ? 1 : 0,
      ps->beat_in_write ? 1 : 0, static_cast<unsigned long long>(res.size_bytes), res.writer_signal,
      res.failed_call[0] != '\0' ? res.failed_call : "-");
  std::fflush(stdout);
  KEEP_FRAME();
  return rc;
}

std::string Tids() {
  std::string out;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (!out.empty()) out += ",";
    out += e->d_name;
  }
  ::closedir(d);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode_name = "fork", path, type_name = "full", go_fifo;
  size_t heap_mb = 32;
  int threads = 3;
  uint64_t seed = 1;
  bool kill_writer = false;
  long nproc_limit = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--mode") {
      mode_name = v;
    } else if (k == "--path") {
      path = v;
    } else if (k == "--heap-mb") {
      heap_mb = std::strtoull(v.c_str(), nullptr, 10);
    } else if (k == "--threads") {
      threads = std::atoi(v.c_str());
    } else if (k == "--seed") {
      seed = std::strtoull(v.c_str(), nullptr, 10);
    } else if (k == "--type") {
      type_name = v;
    } else if (k == "--kill-writer") {
      kill_writer = v == "1";
    } else if (k == "--nproc-limit") {
      nproc_limit = std::atol(v.c_str());
    } else if (k == "--go-fifo") {
      go_fifo = v;
    } else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  dump::SelfDumpMode mode = mode_name == "fork"      ? dump::SelfDumpMode::kFork
                            : mode_name == "suspend" ? dump::SelfDumpMode::kSuspend
                                                     : dump::SelfDumpMode::kAuto;
  DumpType type = type_name == "heap" ? DumpType::kHeap : DumpType::kFull;
  if (auto st = dump::PrepareSelfDump({}); !st) {
    std::fprintf(stderr, "PrepareSelfDump: %s\n", st.error().message().c_str());
    return 2;
  }
  // A crash of the writer must not run this (the child resets the handlers).
  if (auto st = dump::InstallCrashHandler({}); !st) {
    std::fprintf(stderr, "InstallCrashHandler: %s\n", st.error().message().c_str());
    return 2;
  }
  std::vector<char*> heap;
  for (size_t i = 0; i < heap_mb; ++i) {
    auto* block = static_cast<char*>(std::malloc(1 << 20));
    std::memset(block, static_cast<int>((i & 0x7f) | 1), 1 << 20);
    heap.push_back(block);
  }
  ProgressState ps;
  ps.seed = seed;
  ps.kill_writer = kill_writer;
  ps.marker_a = static_cast<char*>(std::malloc(4096));
  ps.marker_b = static_cast<char*>(std::calloc(1, 4096));
  WriteMarker(seed, ps.marker_a);

  if (::pipe2(g_park_pipe, O_CLOEXEC) != 0) return 2;
  std::latch started(threads);
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&started] {
      started.count_down();
      ParkWorkerInRead();
    });
  }
  std::thread heartbeat(HeartbeatMain);
  started.wait();
  WaitForBeats(5);
  std::printf("READY pid=%d tids=%s\n", ::getpid(), Tids().c_str());
  std::fflush(stdout);
  if (!go_fifo.empty()) {
    int fd = ::open(go_fifo.c_str(), O_RDONLY | O_CLOEXEC);
    char c;
    if (fd < 0 || ::read(fd, &c, 1) != 1) return 2;
    ::close(fd);
  }

  if (nproc_limit >= 0) {
    rlimit rl{static_cast<rlim_t>(nproc_limit), static_cast<rlim_t>(nproc_limit)};
    if (::setrlimit(RLIMIT_NPROC, &rl) != 0) return 2;
  }
  int rc = RequestForkDump(mode, type, path.empty() ? nullptr : path.c_str(), &ps);
  // Still alive and running: the heartbeat goes on.
  WaitForBeats(5);
  std::printf("ALIVE beats=%llu\n", static_cast<unsigned long long>(g_beats.load()));
  std::fflush(stdout);

  g_stop = true;
  ::close(g_park_pipe[1]);
  for (auto& w : workers) w.join();
  heartbeat.join();
  for (char* b : heap) std::free(b);
  std::free(ps.marker_a);
  std::free(ps.marker_b);
  return rc == 0 ? 0 : 1;
}
