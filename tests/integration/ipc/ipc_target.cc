// A target for the diagnostic server's integration tests: starts the real
// runtime (StartRuntime, so the real handlers, hard limit and profiler), in
// the state a test asks for, prints "ready" and waits to be killed.
//
//   ipc_target [--uid N] [--own-userns] [--not-dumpable] [--setuid-after-start N]
//              [--fill-heap] [--map-file PATH] [ignored args...]
//
//   --uid N                 become uid/gid N before starting
//   --own-userns            become host uid 100000, then uid 65534 of a user
//                           namespace of its own that maps only that uid
//   --not-dumpable          prctl(PR_SET_DUMPABLE, 0) after starting
//   --setuid-after-start N  become uid/gid N after starting (a credential change)
//   --fill-heap             allocate until the heap hard limit refuses, keep it
//   --map-file PATH         map PATH executable (it shows in heap snapshots)
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "diag/runtime.h"

namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "ipc_target: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

void BecomeUid(uid_t uid) {
  ::setgroups(0, nullptr);  // fails in a user namespace with setgroups denied: harmless
  if (::setresgid(uid, uid, uid) != 0) Die("setresgid");
  if (::setresuid(uid, uid, uid) != 0) Die("setresuid");
}

void WriteProcFile(const char* path, const std::string& text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    Die(path);
  }
  ::close(fd);
}

// Host uid 100000, seen inside as 65534 (the overflow uid): a peer of the
// host, unmapped here, then shows as 65534 too.
void EnterOwnUserNamespace() {
  BecomeUid(100000);
  // The uid change made /proc/self root's; the maps below are ours to write.
  if (::prctl(PR_SET_DUMPABLE, 1) != 0) Die("prctl");
  if (::unshare(CLONE_NEWUSER) != 0) Die("unshare(CLONE_NEWUSER)");
  WriteProcFile("/proc/self/uid_map", "65534 100000 1\n");
  WriteProcFile("/proc/self/setgroups", "deny");
  WriteProcFile("/proc/self/gid_map", "65534 100000 1\n");
  if (::setresgid(65534, 65534, 65534) != 0) Die("setresgid in the namespace");
  if (::setresuid(65534, 65534, 65534) != 0) Die("setresuid in the namespace");
}

std::vector<void*> g_kept;

size_t FillHeap() {
  g_kept.reserve(1 << 20);
  size_t total = 0;
  for (size_t size : {size_t{1} << 20, size_t{4096}, size_t{64}}) {
    for (;;) {
      void* p = ::operator new(size, std::nothrow);
      if (p == nullptr || g_kept.size() == g_kept.capacity()) break;
      g_kept.push_back(p);
      total += size;
    }
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  bool not_dumpable = false, fill_heap = false;
  int setuid_after = -1;
  const char* map_file = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--uid" && i + 1 < argc) {
      BecomeUid(static_cast<uid_t>(std::atoi(argv[++i])));
    } else if (a == "--own-userns") {
      EnterOwnUserNamespace();
    } else if (a == "--not-dumpable") {
      not_dumpable = true;
    } else if (a == "--setuid-after-start" && i + 1 < argc) {
      setuid_after = std::atoi(argv[++i]);
    } else if (a == "--fill-heap") {
      fill_heap = true;
    } else if (a == "--map-file" && i + 1 < argc) {
      map_file = argv[++i];
    }
  }
  auto rt = cppdiag::StartRuntime();
  if (!rt) {
    std::fprintf(stderr, "ipc_target: %s\n", rt.error().message().c_str());
    return 2;
  }
  if (map_file != nullptr) {
    int fd = ::open(map_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) Die("open --map-file");
    if (::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED) {
      Die("mmap --map-file");
    }
    ::close(fd);
  }
  if (setuid_after >= 0) BecomeUid(static_cast<uid_t>(setuid_after));
  if (not_dumpable && ::prctl(PR_SET_DUMPABLE, 0) != 0) Die("prctl");
  std::printf("started\n");  // stdout's buffer exists before the heap is full
  std::fflush(stdout);
  if (fill_heap) {
    size_t filled = FillHeap();
    std::printf("heap full after %zu bytes\n", filled);
  }
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) ::pause();
}
