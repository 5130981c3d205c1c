// A process with a known glibc heap, for `dump analyze heap`:
//   kWidgets   live Widget objects (polymorphic: a vtable, 1512 bytes each)
//   kGadgets   live Gadget objects (another polymorphic class, 1800 bytes)
//              allocated by a second thread, so in an arena of their own
//   kBuffers   plain 1 MiB buffers (mmapped chunks, one each)
//   kSmall     120-byte buffers, every other one freed (tcache, fastbins)
//   kLeaked    Leaky objects in a ring (each points at the next), whose last
//              outside pointer is dropped: leaked, a cycle no root reaches
// then does what argv[1] says:
//   dump TYPE PATH   self-dump (cppdiag's writer), print DUMP rc=..., exit 0
//   abort            RLIMIT_CORE unlimited, coredump_filter 0x37, abort():
//                    the kernel writes its core
//   wait FIFO        wait for a byte on FIFO (gdb's gcore meanwhile)
// It prints "READY pid=<pid>" once the heap is built.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <string>
#include <thread>

#include "diag/dump/self_dump.h"

namespace {

constexpr int kWidgets = 3000, kGadgets = 500, kBuffers = 5, kSmall = 100, kLeaked = 200;

struct Widget {
  virtual ~Widget() = default;
  virtual int Id() const { return 1; }
  char payload[1512 - 8] = {};
};

struct Gadget {
  virtual ~Gadget() = default;
  virtual int Id() const { return 2; }
  char payload[1800 - 8] = {};
};

struct Leaky {
  virtual ~Leaky() = default;
  Leaky* next = nullptr;
  char payload[1000 - 16] = {};
};

// Roots in the executable's data: not heap, so the arenas hold only what is counted.
Widget* g_widgets[kWidgets];
Gadget* g_gadgets[kGadgets];
void* g_buffers[kBuffers];
void* g_small[kSmall];
int g_park[2];

__attribute__((noinline)) void Leak() {
  Leaky* first = new Leaky;
  Leaky* last = first;
  for (int i = 1; i < kLeaked; ++i) last = last->next = new Leaky;
  last->next = first;
  asm volatile("" : : "r"(first) : "memory");
}

void BuildHeap() {
  for (auto& w : g_widgets) w = new Widget;
  for (auto& b : g_buffers) {
    b = std::malloc(1 << 20);
    std::memset(b, 0x5a, 1 << 20);
  }
  Leak();
  for (auto& s : g_small) s = std::malloc(120);
  for (int i = 0; i < kSmall; i += 2) {
    std::free(g_small[i]);
    g_small[i] = nullptr;
  }
}

void GadgetThread(std::latch* built) {
  for (auto& g : g_gadgets) g = new Gadget;
  built->count_down();
  char c;
  while (::read(g_park[0], &c, 1) > 0) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  std::string action = argv[1];
  if (::pipe(g_park) != 0) return 1;
  if (action == "dump") {
    if (argc != 4) return 2;
    cppdiag::dump::SelfDumpConfig config;
    config.name_template = argv[3];
    if (auto st = cppdiag::dump::PrepareSelfDump(config); !st) {
      std::fprintf(stderr, "PrepareSelfDump: %s\n", st.error().message().c_str());
      return 2;
    }
  }
  // stdout's buffer now: its allocation later would consolidate the fastbins.
  std::printf("START\n");
  std::fflush(stdout);
  BuildHeap();
  std::latch built(1);
  std::thread t(GadgetThread, &built);
  built.wait();
  std::printf("READY pid=%d\n", ::getpid());
  std::fflush(stdout);
  int rc = 0;
  if (action == "dump" && argc == 4) {
    cppdiag::dump::SelfDumpRequest req;
    auto type = cppdiag::ParseDumpType(argv[2]);
    if (!type.ok()) return 2;
    req.type = *type;
    req.reason = "on-demand";
    req.path = argv[3];
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
  } else if (action == "wait" && argc == 3) {
    int fd = ::open(argv[2], O_RDONLY);
    char c;
    while (fd >= 0 && ::read(fd, &c, 1) > 0) {
    }
  } else {
    rc = 2;
  }
  ::close(g_park[1]);
  t.join();
  return rc == 0 ? 0 : 1;
}
