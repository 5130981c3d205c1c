// Test helpers for multi-process tests: start a program with its output in
// files, wait for it with a deadline, read what it printed. Synchronise on
// output (WaitForOutput) or pipes, never on sleep.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/scoped_fd.h"
#include "support/poll.h"  // PollUntil, which tests took from here
#include "support/scoped_temp_dir.h"

namespace cppdiag::testing {

struct SubprocessOptions {
  std::vector<std::string> argv;           // argv[0] is the program path
  std::map<std::string, std::string> env;  // added to (or overriding) ours
  std::vector<std::string> unset_env;      // removed from ours
  std::string cgroup_procs;                // if set, the child joins this cgroup.procs file
  std::string cwd;
};

// How a process ended: exactly one of exit_code or signal is set.
struct Termination {
  std::optional<int> exit_code;
  std::optional<int> signal;
  bool core_dumped = false;
  std::string ToString() const;
};

class Subprocess {
 public:
  // Starts the program; stdout and stderr go to files in a fresh temp dir.
  explicit Subprocess(SubprocessOptions options);
  ~Subprocess();  // kills (SIGKILL) and reaps a child still running
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);

  // Waits for the child to end (on its pidfd, no polling); nullopt on
  // timeout (the child keeps running).
  std::optional<Termination> Wait(std::chrono::milliseconds timeout);

  std::string Stdout() const;
  std::string Stderr() const;
  // Waits until stdout or stderr contains `needle`, or the child ends, or timeout.
  bool WaitForOutput(const std::string& needle, std::chrono::milliseconds timeout);

  const std::string& temp_dir() const { return dir_.path(); }

 private:
  ScopedTempDir dir_{"cppdiag-sub"};
  pid_t pid_ = -1;
  ScopedFd pidfd_;  // readable once the child has ended
  std::optional<Termination> done_;
};

// Runs `argv` to its end (killed after `timeout`) and returns stdout then
// stderr, with "(timed out)" appended when it had to be killed.
std::string RunToCompletion(std::vector<std::string> argv,
                            std::chrono::milliseconds timeout = std::chrono::seconds(120));

// The built cppdiag run to its end with `args`: its exit code (-1 when it did
// not exit normally within `timeout`), stdout and stderr apart.
struct CliRun {
  int exit_code = -1;
  std::string out, err;
};
CliRun Cppdiag(std::vector<std::string> args,
               std::chrono::milliseconds timeout = std::chrono::seconds(120));

// The whole file at `path`; empty when it cannot be read.
std::string ReadAll(const std::string& path);

// gdb -batch on `core` of `exe`: "info threads", "thread apply all bt", then
// `extra` commands; returns what gdb printed (stdout then stderr).
std::string GdbBatch(const std::string& exe, const std::string& core,
                     const std::vector<std::string>& extra = {});

// The port of the first complete "Listening on http://HOST:PORT" line the
// child has printed (leakapp's, once bound: start it with --port 0 and read
// the port here, never pick one by bind-and-release); nullopt when the child
// ends or `timeout` passes first.
std::optional<int> WaitForListeningPort(Subprocess& p, std::chrono::milliseconds timeout);

// Path of a binary built by this project ("leakapp", "cppdiag").
std::string BuiltBinary(const std::string& name);

// A copy of BuiltBinary(name) that any uid can execute and that a private
// tmpfs on /tmp does not hide: tests that run a program as another uid or in
// a mount namespace of its own use it, since the build tree may sit under
// /tmp or in a directory only root can enter (/root). Copied once per build
// into /var/tmp/cppdiag-test-bin/<hash of the build dir>/ (mode 0755).
std::string StagedBinary(const std::string& name);

}  // namespace cppdiag::testing
