// heap_bench_target: a process with a known heap of about a million live
// allocations over about 1 GiB, for timing `cppdiag dump analyze` (run by
// analyze_bench.sh; the test command never runs it). Four threads build it,
// each in an arena of its own:
//   Order     400,000 live (polymorphic, 248 bytes: 256-byte chunks)
//   Session   200,000 live (polymorphic, 1000 bytes), each pointing at an Order
//   Document  100,000 live (polymorphic, 2000 bytes)
//   buffers   250,000 live plain buffers of 16 to 2048 bytes
//   Leaky      50,000 polymorphic objects in rings of 100 (each points at the
//              next) whose last outside pointer is dropped: leaked
//   large         64 plain 4 MiB buffers (mmapped chunks, one each)
// with --extra-mib N, N MiB more in 64 MiB buffers (to make a larger core).
// Every byte of every allocation is written, so the pages are real.
//
// Then it does what the action says:
//   dump TYPE PATH   self-dump with cppdiag's writer (type full, heap...)
//   abort            RLIMIT_CORE unlimited, coredump_filter 0x37, abort():
//                    the kernel writes its core (core_pattern decides where)
//   wait FIFO        wait for a byte on FIFO (gdb's gcore meanwhile)
// It prints "READY pid=<pid>" and one "EXPECT <type> <count>" line per class
// once the heap is built.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <barrier>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "diag/dump/self_dump.h"

namespace {

constexpr int kThreads = 4;
constexpr int kOrders = 400'000, kSessions = 200'000, kDocuments = 100'000;
constexpr int kBuffers = 250'000, kLeaked = 50'000, kRing = 100, kLarge = 64;
constexpr size_t kLargeBytes = size_t{4} << 20, kExtraBytes = size_t{64} << 20;

struct Order {
  virtual ~Order() = default;
  virtual int Kind() const { return 1; }
  char body[248 - 8];
};

struct Session {
  virtual ~Session() = default;
  virtual int Kind() const { return 2; }
  Order* last_order = nullptr;
  char body[1000 - 16];
};

struct Document {
  virtual ~Document() = default;
  virtual int Kind() const { return 3; }
  char body[2000 - 8];
};

struct Leaky {
  virtual ~Leaky() = default;
  Leaky* next = nullptr;
  char body[500 - 16];
};

// One thread's share. The pointer vectors are the roots: their storage is on
// the heap, the vectors themselves in the executable's data (g_shares).
struct Share {
  std::vector<Order*> orders;
  std::vector<Session*> sessions;
  std::vector<Document*> documents;
  std::vector<void*> buffers;
  std::vector<void*> large;
};

Share g_shares[kThreads];
int g_park[2];

// The same sizes on every run (a fixed linear congruential sequence).
uint32_t NextSize(uint64_t& state) {
  state = state * 6364136223846793005u + 1442695040888963407u;
  return 16 + static_cast<uint32_t>((state >> 33) % (2048 - 16 + 1));
}

__attribute__((noinline)) void LeakRings(int count) {
  for (int done = 0; done < count; done += kRing) {
    auto* first = new Leaky;
    std::memset(first->body, 'L', sizeof first->body);
    Leaky* last = first;
    for (int i = 1; i < kRing; ++i) {
      last = last->next = new Leaky;
      std::memset(last->body, 'L', sizeof last->body);
    }
    last->next = first;
    asm volatile("" : : "r"(first) : "memory");
  }
}

void Build(int index, size_t extra_bytes) {
  Share& s = g_shares[index];
  s.orders.reserve(kOrders / kThreads);
  s.sessions.reserve(kSessions / kThreads);
  s.documents.reserve(kDocuments / kThreads);
  s.buffers.reserve(kBuffers / kThreads);
  for (int i = 0; i < kOrders / kThreads; ++i) {
    auto* o = new Order;
    std::memset(o->body, 'O', sizeof o->body);
    s.orders.push_back(o);
  }
  for (int i = 0; i < kSessions / kThreads; ++i) {
    auto* session = new Session;
    std::memset(session->body, 'S', sizeof session->body);
    session->last_order = s.orders[static_cast<size_t>(i) * 2];
    s.sessions.push_back(session);
  }
  for (int i = 0; i < kDocuments / kThreads; ++i) {
    auto* d = new Document;
    std::memset(d->body, 'D', sizeof d->body);
    s.documents.push_back(d);
  }
  uint64_t state = static_cast<uint64_t>(index) + 1;
  for (int i = 0; i < kBuffers / kThreads; ++i) {
    uint32_t n = NextSize(state);
    void* b = std::malloc(n);
    std::memset(b, 'B', n);
    s.buffers.push_back(b);
  }
  LeakRings(kLeaked / kThreads);
  for (int i = 0; i < kLarge / kThreads; ++i) {
    void* b = std::malloc(kLargeBytes);
    std::memset(b, 'M', kLargeBytes);
    s.large.push_back(b);
  }
  for (size_t done = 0; done < extra_bytes; done += kExtraBytes) {
    void* b = std::malloc(kExtraBytes);
    std::memset(b, 'X', kExtraBytes);
    s.large.push_back(b);
  }
}

// A worker: builds its share, says so, then parks until main closes the pipe.
void Worker(int index, size_t extra_bytes, std::barrier<>* built) {
  Build(index, extra_bytes);
  built->arrive_and_wait();
  char c;
  while (::read(g_park[0], &c, 1) > 0) {
  }
}

int Usage() {
  std::fprintf(stderr,
               "usage: heap_bench_target [--extra-mib N] dump TYPE PATH | abort | wait FIFO\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  size_t extra_mib = 0;
  int arg = 1;
  if (arg + 1 < argc && std::string(argv[arg]) == "--extra-mib") {
    extra_mib = std::strtoull(argv[arg + 1], nullptr, 10);
    arg += 2;
  }
  if (arg >= argc) return Usage();
  std::string action = argv[arg];
  if ((action == "dump" && argc != arg + 3) || (action == "wait" && argc != arg + 2) ||
      (action == "abort" && argc != arg + 1)) {
    return Usage();
  }
  if (::pipe(g_park) != 0) return 1;
  if (action == "dump") {
    cppdiag::dump::SelfDumpConfig config;
    config.name_template = argv[arg + 2];
    if (auto st = cppdiag::dump::PrepareSelfDump(config); !st) {
      std::fprintf(stderr, "PrepareSelfDump: %s\n", st.error().message().c_str());
      return 2;
    }
  }
  size_t extra_per_thread = (extra_mib << 20) / kThreads;
  std::barrier<> built(kThreads + 1);
  std::vector<std::thread> workers;
  for (int i = 0; i < kThreads; ++i) workers.emplace_back(Worker, i, extra_per_thread, &built);
  built.arrive_and_wait();
  std::printf("READY pid=%d\n", ::getpid());
  std::printf("EXPECT Order %d\nEXPECT Session %d\nEXPECT Document %d\nEXPECT Leaky %d\n", kOrders,
              kSessions, kDocuments, kLeaked);
  std::fflush(stdout);
  int rc = 0;
  if (action == "dump") {
    cppdiag::dump::SelfDumpRequest req;
    auto type = cppdiag::ParseDumpType(argv[arg + 1]);
    if (!type.ok()) return 2;
    req.type = *type;
    req.reason = "on-demand";
    req.path = argv[arg + 2];
    cppdiag::dump::SelfDumpResult res;
    rc = cppdiag::dump::WriteSelfDump(req, &res);
    std::printf("DUMP rc=%d path=%s\n", rc, res.path);
  } else if (action == "abort") {
    rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    ::setrlimit(RLIMIT_CORE, &unlimited);
    int fd = ::open("/proc/self/coredump_filter", O_WRONLY);
    if (fd >= 0) {
      (void)!::write(fd, "0x37", 4);
      ::close(fd);
    }
    std::abort();
  } else {
    int fd = ::open(argv[arg + 1], O_RDONLY);
    char c;
    while (fd >= 0 && ::read(fd, &c, 1) > 0) {
    }
  }
  ::close(g_park[1]);
  for (auto& w : workers) w.join();
  return rc == 0 ? 0 : 1;
}
