// cppdiag counters monitor (and collect) against the real leakapp until
// something ends them: under a pseudo-terminal the table is redrawn in place
// and q or SIGINT quits; in a pipe one block per interval; the target's exit
// ends both, leaving a complete file.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "common/proc.h"
#include "diag/counters/catalog.h"
#include "integration/counters/counters_fixture.h"
#include "integration/counters/cpu_cgroup.h"
#include "integration/leakapp/leakapp_process.h"
#include "integration/leakapp/prometheus_text.h"
#include "support/scoped_cgroup.h"
#include "support/subprocess.h"

namespace cppdiag::testing {
namespace {

namespace fs = std::filesystem;
namespace names = counters::names;
using namespace std::chrono_literals;

// Runs `argv` on a new pseudo-terminal; collects what it writes.
class PtyProcess {
 public:
  explicit PtyProcess(std::vector<std::string> argv) {
    winsize ws{};
    ws.ws_row = 50;
    ws.ws_col = 120;
    pid_ = ::forkpty(&master_, nullptr, nullptr, &ws);
    if (pid_ == 0) {
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~PtyProcess() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }
  bool ok() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // Reads for `d` (or until the terminal closes).
  void ReadFor(std::chrono::milliseconds d) {
    auto end = std::chrono::steady_clock::now() + d;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return;
      pollfd p{master_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(master_, buf, sizeof buf);
      if (n <= 0) return;  // EIO: the other side is closed
      output_.append(buf, static_cast<size_t>(n));
    }
  }
  // Reads until `done(output())` holds (checked after each read), the
  // terminal closes or `timeout` passes; whether it held.
  bool ReadUntil(const std::function<bool(const std::string&)>& done,
                 std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!done(output_)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{master_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(master_, buf, sizeof buf);
      if (n <= 0) return done(output_);  // EIO: the other side is closed
      output_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  void Type(const std::string& keys) { (void)!::write(master_, keys.data(), keys.size()); }

  // Waits for the exit and drains the terminal; the exit code, or -1.
  int Wait(std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      ReadFor(50ms);
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        status_ = st;
        ReadFor(100ms);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      }
    }
    return -1;
  }
  const std::string& output() const { return output_; }

 private:
  int master_ = -1;
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string output_;
};

class MonitorTest : public CountersTest {
 protected:
  void SetUp() override {
    CountersTest::SetUp();
    ASSERT_TRUE(app_.WaitUntilReady()) << app_.Output();
  }
  std::vector<std::string> MonitorArgs() {
    return {BuiltBinary("cppdiag"),     "counters",   "monitor", "-p",
            std::to_string(app_.pid()), "--interval", "250ms"};
  }
  // Cursor-up escapes ("\x1b[<n>A") in `out`.
  static size_t CursorUps(const std::string& out) {
    size_t up = 0;
    for (size_t at = out.find("\x1b["); at != std::string::npos; at = out.find("\x1b[", at + 1)) {
      size_t end = out.find_first_not_of("0123456789", at + 2);
      if (end != std::string::npos && end > at + 2 && out[end] == 'A') ++up;
    }
    return up;
  }
  // What ExpectRedrawnInPlace checks, for waiting on it.
  static bool Redrawn(const std::string& out) {
    return Count(out, "    RSS ") >= 3 && CursorUps(out) >= 2 && Count(out, "\x1b[2K") >= 3;
  }
  // The table was drawn, then redrawn in place at least twice: the cursor
  // goes back up over it and each line is cleared before it is rewritten.
  void ExpectRedrawnInPlace(const std::string& out) {
    EXPECT_GE(Count(out, "    RSS "), 3u) << out;
    EXPECT_GE(CursorUps(out), 2u) << "no cursor-up redraws in:\n" << out;
    EXPECT_GE(Count(out, "\x1b[2K"), 3u);
    EXPECT_NE(out.find("process " + std::to_string(app_.pid())), std::string::npos);
  }

  LeakappProcess app_;
};

TEST_F(MonitorTest, RedrawsInPlaceOnATerminalAndQuitsOnQ) {
  PtyProcess monitor(MonitorArgs());
  ASSERT_TRUE(monitor.ok());
  // Until it has redrawn twice (at 250 ms), not for a set time.
  EXPECT_TRUE(monitor.ReadUntil(Redrawn, 30s)) << monitor.output();
  monitor.Type("q");
  EXPECT_EQ(monitor.Wait(5s), 0) << monitor.output();
  ExpectRedrawnInPlace(monitor.output());
  EXPECT_NE(monitor.output().find("Press q or Ctrl-C to quit"), std::string::npos);
  EXPECT_NE(monitor.output().find("\x1b[?25h"), std::string::npos) << "cursor shown again";
}

TEST_F(MonitorTest, StopsOnSigint) {
  PtyProcess monitor(MonitorArgs());
  ASSERT_TRUE(monitor.ok());
  EXPECT_TRUE(monitor.ReadUntil(Redrawn, 30s)) << monitor.output();
  ::kill(monitor.pid(), SIGINT);
  EXPECT_EQ(monitor.Wait(5s), 0) << monitor.output();
  ExpectRedrawnInPlace(monitor.output());
}

TEST_F(MonitorTest, SaysWhenTheTargetExits) {
  PtyProcess monitor(MonitorArgs());
  ASSERT_TRUE(monitor.ok());
  // Once it shows the target, not after a set time.
  EXPECT_TRUE(monitor.ReadUntil(
      [](const std::string& out) { return out.find("    RSS ") != std::string::npos; }, 30s))
      << monitor.output();
  app_.process().Signal(SIGTERM);
  EXPECT_EQ(monitor.Wait(10s), 0) << monitor.output();
  EXPECT_NE(monitor.output().find("has exited"), std::string::npos) << monitor.output();
}

TEST_F(MonitorTest, PrintsOneBlockPerIntervalWhenNotATerminal) {
  Subprocess p({.argv = MonitorArgs()});
  ASSERT_TRUE(PollUntil([&] { return Count(p.Stdout(), "    RSS ") >= 3; }, 10s)) << p.Stdout();
  p.Signal(SIGINT);
  auto t = p.Wait(5s);
  ASSERT_TRUE(t && t->exit_code) << p.Stderr();
  EXPECT_EQ(*t->exit_code, 0);
  EXPECT_EQ(p.Stdout().find("\x1b["), std::string::npos) << "no escapes in a pipe";
}

TEST_F(MonitorTest, CollectStopsOnSigintLeavingACompleteFile) {
  std::string path = Path("stopped.json");
  Subprocess p(
      {.argv = {BuiltBinary("cppdiag"), "counters", "collect", "-p", std::to_string(app_.pid()),
                "--format", "json", "-o", path, "--interval", "100ms"}});
  ASSERT_TRUE(PollUntil([&] { return Count(ReadAll(path), "\"timestamp\"") >= 3; }, 10s));
  p.Signal(SIGINT);
  auto t = p.Wait(5s);
  ASSERT_TRUE(t && t->exit_code) << p.Stderr();
  EXPECT_EQ(*t->exit_code, 0) << p.Stderr();
  EXPECT_NE(p.Stdout().find("stopped by SIGINT"), std::string::npos) << p.Stdout();
  auto doc = nlohmann::json::parse(ReadAll(path), nullptr, false);
  ASSERT_TRUE(doc.is_array()) << ReadAll(path);
  EXPECT_GE(doc.size(), 3u);
}

TEST_F(MonitorTest, CollectEndsWithTheTargetLeavingACompleteFile) {
  std::string path = Path("ended.csv");
  Subprocess p({.argv = {BuiltBinary("cppdiag"), "counters", "collect", "-p",
                         std::to_string(app_.pid()), "-o", path, "--interval", "100ms"}});
  ASSERT_TRUE(PollUntil([&] { return Count(ReadAll(path), "\n") >= 4; }, 10s));
  app_.process().Signal(SIGTERM);
  auto t = p.Wait(10s);
  ASSERT_TRUE(t && t->exit_code) << p.Stderr();
  EXPECT_EQ(*t->exit_code, 0) << p.Stderr();
  EXPECT_NE(p.Stdout().find("(process " + std::to_string(app_.pid()) + " exited)"),
            std::string::npos)
      << p.Stdout();
  Csv csv = ParseCsv(ReadAll(path));
  EXPECT_GE(csv.rows.size(), 3u);
  for (const auto& row : csv.rows) EXPECT_GT(row.at(names::kRss), 0.0);
}

}  // namespace
}  // namespace cppdiag::testing
