#include "cli/target_watch.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "common/io.h"
#include "common/proc.h"

namespace cppdiag::cli {
namespace {

// The wait status a zombie leaves in /proc/<pid>/stat (field 52, "exit_code").
std::optional<int> ZombieWaitStatus(pid_t pid) {
  auto line = ReadFileToString("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!line) return std::nullopt;
  size_t paren = line->rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream in(line->substr(paren + 1));
  std::vector<std::string> fields;  // fields[0] is field 3 (state)
  for (std::string f; in >> f;) fields.push_back(f);
  constexpr size_t kExitCode = 52 - 3;
  if (fields.size() <= kExitCode || fields[0] != "Z") return std::nullopt;
  return std::stoi(fields[kExitCode]);
}

}  // namespace

TargetWatch::TargetWatch(pid_t pid) : pid_(pid) {
  if (auto stat = ReadProcStat(pid)) start_ticks_ = stat->start_time_ticks;
  pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

bool TargetWatch::Exited(std::chrono::milliseconds grace) const {
  if (pidfd_.is_valid()) {  // readable once the process has exited
    pollfd p{pidfd_.get(), POLLIN, 0};
    return HANDLE_EINTR(::poll(&p, 1, static_cast<int>(grace.count()))) == 1;
  }
  auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    auto stat = ReadProcStat(pid_);
    if (!stat || stat->state == 'Z' || stat->state == 'X' ||
        (start_ticks_ != 0 && stat->start_time_ticks != start_ticks_)) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string TargetWatch::HowItEnded() const {
  auto stat = ReadProcStat(pid_);
  if (!stat || (start_ticks_ != 0 && stat->start_time_ticks != start_ticks_)) return "";
  auto status = ZombieWaitStatus(pid_);
  if (!status) return "";
  if (WIFSIGNALED(*status)) {
    const char* name = ::sigabbrev_np(WTERMSIG(*status));
    return "killed by " +
           (name ? std::string("SIG") + name : "signal " + std::to_string(WTERMSIG(*status)));
  }
  if (WIFEXITED(*status)) return "exit status " + std::to_string(WEXITSTATUS(*status));
  return "";
}

std::string TargetWatch::ExitedDuring(const std::string& what) const {
  std::string how = HowItEnded();
  return "the target (pid " + std::to_string(pid_) + ") exited during " + what +
         (how.empty() ? "" : " (" + how + ")");
}

}  // namespace cppdiag::cli
