#include "diag/ipc/testing/descriptors.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstdlib>
#include <ctime>

namespace cppdiag::ipc::testing {
namespace {

double ProcessCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

double CpuShareWhileWaiting(int fd, int ms, bool* readable) {
  double cpu0 = ProcessCpuSeconds();
  auto t0 = std::chrono::steady_clock::now();
  pollfd p{fd, POLLIN, 0};
  int n = ::poll(&p, fd >= 0 ? 1 : 0, ms);
  if (readable != nullptr) *readable = n == 1;
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return (ProcessCpuSeconds() - cpu0) / wall;
}

int ListenerFd(const std::string& path) {
  DIR* d = ::opendir("/proc/self/fd");
  int found = -1;
  while (dirent* e = ::readdir(d)) {
    int fd = std::atoi(e->d_name);
    if (e->d_name[0] == '.' || fd == ::dirfd(d)) continue;
    sockaddr_un addr{};
    socklen_t len = sizeof addr;
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
        addr.sun_family == AF_UNIX && path == addr.sun_path &&
        ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) == 0 && listening) {
      found = fd;
    }
  }
  ::closedir(d);
  return found;
}

std::vector<ScopedFd> FillDescriptorsBelow64() {
  std::vector<ScopedFd> held;
  for (;;) {
    int fd = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) break;
    if (fd >= 64) {
      ::close(fd);
      break;
    }
    held.emplace_back(fd);
  }
  return held;
}

}  // namespace cppdiag::ipc::testing
