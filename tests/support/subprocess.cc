#include "support/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <regex>
#include <stdexcept>

#include "common/io.h"

extern char** environ;

namespace cppdiag::testing {

std::string Termination::ToString() const {
  if (exit_code) return "exit code " + std::to_string(*exit_code);
  if (signal) {
    return std::string("signal ") + ::strsignal(*signal) + (core_dumped ? " (core dumped)" : "");
  }
  return "running";
}

Subprocess::Subprocess(SubprocessOptions options) {
  // Everything the child needs is built before fork: the child only calls
  // async-signal-safe functions.
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    size_t eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& name : options.unset_env) env.erase(name);
  for (const auto& [k, v] : options.env) env[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (auto& s : options.argv) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::string out = dir_.Join("stdout"), err = dir_.Join("stderr");
  std::string my_pid_line;

  int cgroup_fd = -1;
  if (!options.cgroup_procs.empty()) {
    cgroup_fd = ::open(options.cgroup_procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (cgroup_fd < 0) throw std::runtime_error("cannot open " + options.cgroup_procs);
  }

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    if (cgroup_fd >= 0) {
      // Join the cgroup before exec, so every allocation of the program counts.
      if (::write(cgroup_fd, "0", 1) != 1) _exit(126);
    }
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0) _exit(126);
    ::dup2(o, STDOUT_FILENO);
    ::dup2(e, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) _exit(126);
    // Tests may have blocked signals; the program starts with none blocked.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // The program starts with stdin, stdout and stderr only, whatever the
    // test process (or what started it) left open without O_CLOEXEC.
    ::close_range(3, ~0u, 0);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  if (cgroup_fd >= 0) ::close(cgroup_fd);
  // Our unreaped child: its pid cannot be reused before we wait for it.
  // (glibc 2.36's <sys/pidfd.h> lacks extern "C": the raw syscall.)
  pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
  if (!pidfd_.is_valid()) throw std::runtime_error("pidfd_open failed");
}

Subprocess::~Subprocess() {
  if (!done_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

bool Subprocess::running() {
  if (done_) return false;
  return !Wait(std::chrono::milliseconds(0)).has_value();
}

void Subprocess::Signal(int sig) {
  if (!done_) ::kill(pid_, sig);
}

std::optional<Termination> Subprocess::Wait(std::chrono::milliseconds timeout) {
  if (done_) return done_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      Termination t;
      if (WIFEXITED(status)) t.exit_code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) {
        t.signal = WTERMSIG(status);
        t.core_dumped = WCOREDUMP(status);
      }
      done_ = t;
      return done_;
    }
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{.fd = pidfd_.get(), .events = POLLIN, .revents = 0};
    ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), INT32_MAX)));
  }
}

std::string Subprocess::Stdout() const {
  auto r = ReadFileToString(dir_.Join("stdout"), 1 << 30);
  return r ? *r : "";
}

std::string Subprocess::Stderr() const {
  auto r = ReadFileToString(dir_.Join("stderr"), 1 << 30);
  return r ? *r : "";
}

bool Subprocess::WaitForOutput(const std::string& needle, std::chrono::milliseconds timeout) {
  auto has = [&] {
    return Stdout().find(needle) != std::string::npos || Stderr().find(needle) != std::string::npos;
  };
  PollUntil([&] { return has() || !running(); }, timeout);
  return has();  // once more: the child may have printed it as it ended
}

std::string RunToCompletion(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  Subprocess p(SubprocessOptions{.argv = std::move(argv)});
  auto t = p.Wait(timeout);
  return p.Stdout() + p.Stderr() + (t ? "" : "\n(timed out)");
}

CliRun Cppdiag(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  args.insert(args.begin(), BuiltBinary("cppdiag"));
  Subprocess p(SubprocessOptions{.argv = std::move(args)});
  auto t = p.Wait(timeout);
  CliRun r;
  r.exit_code = t && t->exit_code ? *t->exit_code : -1;
  r.out = p.Stdout();
  r.err = p.Stderr();
  return r;
}

std::string ReadAll(const std::string& path) {
  auto content = ReadFileToString(path);
  return content ? *content : std::string();
}

std::string GdbBatch(const std::string& exe, const std::string& core,
                     const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {"/usr/bin/gdb",
                                   "-batch",
                                   "-nx",
                                   "-ex",
                                   "set debuginfod enabled off",
                                   "-ex",
                                   "info threads",
                                   "-ex",
                                   "thread apply all bt"};
  for (const auto& cmd : extra) argv.insert(argv.end(), {"-ex", cmd});
  argv.insert(argv.end(), {exe, core});
  return RunToCompletion(std::move(argv));
}

std::optional<int> WaitForListeningPort(Subprocess& p, std::chrono::milliseconds timeout) {
  static const std::regex kLine(R"(Listening on http://\S+:([0-9]+)\r?\n)");
  std::optional<int> port;
  auto found = [&] {
    for (const std::string& out : {p.Stdout(), p.Stderr()}) {
      std::smatch m;
      if (std::regex_search(out, m, kLine)) {
        port = std::stoi(m[1].str());
        return true;
      }
    }
    return false;
  };
  PollUntil([&] { return found() || !p.running(); }, timeout);
  if (!port) found();  // once more: it may have printed it as it ended
  return port;
}

std::string BuiltBinary(const std::string& name) {
  static const char* const kDirs[] = {
      "/src/leakapp/", "/src/cli/", "/tests/integration/dump/", "/tests/integration/analyze/",
      "/bench/",       "/"};
  for (const char* d : kDirs) {
    std::string p = std::string(CPPDIAG_BINARY_DIR) + d + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return std::string(CPPDIAG_BINARY_DIR) + "/" + name + " (not built)";
}

std::string StagedBinary(const std::string& name) {
  std::string source = BuiltBinary(name);
  std::string dir =
      "/var/tmp/cppdiag-test-bin/" + std::to_string(std::hash<std::string>{}(CPPDIAG_BINARY_DIR));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  ::chmod("/var/tmp/cppdiag-test-bin", 0755);
  ::chmod(dir.c_str(), 0755);
  std::string staged = dir + "/" + name;
  struct stat src {
  }, dst{};
  if (::stat(source.c_str(), &src) != 0) return source;  // not built: let the exec fail loudly
  if (::stat(staged.c_str(), &dst) == 0 && dst.st_size == src.st_size &&
      dst.st_mtime >= src.st_mtime) {
    return staged;
  }
  // Copy under a unique name, then rename: concurrent tests never see half a file.
  std::string tmp = staged + ".tmp-" + std::to_string(::getpid());
  std::filesystem::copy_file(source, tmp, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) return source;
  ::chmod(tmp.c_str(), 0755);
  if (::rename(tmp.c_str(), staged.c_str()) != 0) return source;
  return staged;
}

}  // namespace cppdiag::testing
