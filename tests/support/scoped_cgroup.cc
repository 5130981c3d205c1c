#include "support/scoped_cgroup.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <sstream>

#include "common/cgroup.h"
#include "common/io.h"
#include "common/parse.h"
#include "support/poll.h"

namespace cppdiag::testing {

ScopedCgroup::ScopedCgroup(uint64_t limit_bytes, bool swap_off) {
  if (::geteuid() != 0) {
    why_not_ = "needs root to create a memory cgroup";
    return;
  }
  auto self = CgroupReader().FindMemoryCgroup();
  if (!self) {
    why_not_ = self.error().message();
    return;
  }
  static std::atomic<int> counter{0};
  std::string dir = self->second + "/cppdiag-test-" + std::to_string(::getpid()) + "-" +
                    std::to_string(counter++);
  if (::mkdir(dir.c_str(), 0755) != 0) {
    why_not_ = "cannot create " + dir + ": " + std::strerror(errno);
    return;
  }
  version_ = self->first;
  dir_ = dir;
  if (limit_bytes != 0) {
    const char* file = version_ == 1 ? "/memory.limit_in_bytes" : "/memory.max";
    if (auto s = WriteStringToFile(dir_ + file, std::to_string(limit_bytes)); !s) {
      why_not_ = s.error().message();
      ::rmdir(dir_.c_str());
      dir_.clear();
      return;
    }
    if (swap_off) {
      // No swap here, but a machine with swap would slow the OOM: forbid it where possible.
      if (version_ == 1) {
        (void)WriteStringToFile(dir_ + "/memory.swappiness", "0");
      } else {
        (void)WriteStringToFile(dir_ + "/memory.swap.max", "0");
      }
    }
  }
}

ScopedCgroup::~ScopedCgroup() {
  if (dir_.empty()) return;
  // Kill what is left until the cgroup is empty, then remove it (it stays
  // busy while a killed process is still exiting).
  PollUntil(
      [&] {
        auto procs = ReadFileToString(procs_file());
        if (procs && procs->empty()) return true;
        if (procs) {
          std::istringstream in(*procs);
          pid_t pid;
          while (in >> pid) ::kill(pid, SIGKILL);
        }
        return false;
      },
      std::chrono::seconds(2));
  PollUntil([&] { return ::rmdir(dir_.c_str()) == 0; }, std::chrono::seconds(1));
}

uint64_t ScopedCgroup::oom_kills() const {
  std::string file = dir_ + (version_ == 1 ? "/memory.oom_control" : "/memory.events");
  auto text = ReadFileToString(file);
  if (!text) return 0;
  std::istringstream in(*text);
  std::string key;
  uint64_t value;
  while (in >> key >> value) {
    if (key == "oom_kill") return value;
  }
  return 0;
}

}  // namespace cppdiag::testing
