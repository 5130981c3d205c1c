#include "cli/monitor/firing_line.h"

#include <time.h>

#include <cstdio>
#include <mutex>

#include "cli/display.h"

namespace cppdiag::cli::monitor {

std::string UtcNow() {
  time_t t = ::time(nullptr);
  tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string FiringText(const Firing& f) {
  std::string text = f.trigger;
  if (!f.value.empty()) text += " " + f.value;
  if (!f.op.empty()) text += " " + f.op + " " + f.threshold;
  return text;
}

std::string FiringLine(pid_t pid, const Firing& f, const std::string& path,
                       const std::string& detail, const std::string& failure) {
  std::string line = UtcNow() + " " + std::to_string(pid) + " " + FiringText(f);
  if (path.empty()) return line + " failed: " + ForTerminal(failure);
  line += " " + ForTerminal(path);
  if (!detail.empty()) line += " (" + ForTerminal(detail) + ")";
  return line;
}

void PrintLine(const std::string& line) {
  // One write of the whole line: the monitor's workers print theirs too.
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  std::string text = line + "\n";
  (void)std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace cppdiag::cli::monitor
