#include "integration/ondemand/namespaced_processes.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "common/io.h"
#include "common/proc.h"

namespace cppdiag::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const char* const kUnshare = "/usr/bin/unshare";
const char* const kNsenter = "/usr/bin/nsenter";
const char* const kSetpriv = "/usr/bin/setpriv";

// What the environment of the test run might set must not change what is
// tested.
const std::vector<std::string> kUnsetEnv = {"TMPDIR",
                                            "LEAKAPP_PORT",
                                            "SPDLOG_LEVEL",
                                            "CPPDIAG_DUMP_NAME",
                                            "CPPDIAG_DUMP_DIR",
                                            "CPPDIAG_DUMP_TYPE",
                                            "CPPDIAG_HEAP_HARD_LIMIT",
                                            "CPPDIAG_ENABLE_DUMP_ON_CRASH",
                                            "CPPDIAG_OOM_DUMP_THRESHOLD",
                                            "CPPDIAG_ENABLE_DIAGNOSTICS",
                                            "HOSTNAME"};

}  // namespace

pid_t ProgramChildOf(pid_t parent) {
  auto pids = ListPids();
  if (!pids) return 0;
  for (pid_t pid : *pids) {
    auto stat = ReadProcStat(pid);
    if (!stat || stat->ppid != parent) continue;
    if (stat->comm == "unshare" || stat->comm == "sh" || stat->comm == "setpriv" ||
        stat->comm == "env" || stat->comm == "mount" || stat->comm == "nsenter") {
      continue;
    }
    return pid;
  }
  return 0;
}

const Privileges kRootAllCaps = {};
const Privileges kRootNoCaps = {kSetpriv, "--inh-caps=-all", "--bounding-set=-all"};
const Privileges kNobodyNoCaps = {
    kSetpriv, "--reuid",        "65534",           "--regid",
    "65534",  "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"};
const Privileges kOtherNoCaps = {
    kSetpriv, "--reuid",        "65533",           "--regid",
    "65533",  "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"};

PidNamespace::PidNamespace() {
  for (const char* tool : {kUnshare, kNsenter, kSetpriv}) {
    if (::access(tool, X_OK) != 0) {
      why_not_ = std::string(tool) + " is not available (util-linux)";
      return;
    }
  }
  if (::geteuid() != 0) {
    why_not_ = "needs root (namespaces, mounts, other uids)";
    return;
  }
  {
    Subprocess probe(
        {.argv = {kUnshare, "--pid", "--fork", "--mount", "--propagation", "private", "/bin/sh",
                  "-c", "mount -t proc proc /proc && mount -t tmpfs tmpfs /tmp"}});
    auto t = probe.Wait(30s);
    if (!t || t->exit_code != 0) {
      why_not_ =
          "unshare --pid --mount with proc and tmpfs mounts does not work here: " + probe.Stderr();
      return;
    }
  }
  holder_ = std::make_unique<Subprocess>(SubprocessOptions{
      .argv = {kUnshare, "--pid", "--fork", "--kill-child", "/bin/sleep", "infinity"}});
  PollUntil([&] { return (init_pid_ = ProgramChildOf(holder_->pid())) > 0 || !holder_->running(); },
            10s);
  if (init_pid_ <= 0) why_not_ = "no init in the new PID namespace: " + holder_->Stderr();
}

std::vector<std::string> PidNamespace::Enter(const std::vector<std::string>& argv) const {
  std::vector<std::string> out = {kNsenter, "-t", std::to_string(init_pid_), "--pid", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

NamespacedLeakapp::NamespacedLeakapp(const PidNamespace& pod, std::string dump_dir, std::string exe,
                                     bool tmpdir_via_symlink)
    : pod_(pod),
      dump_dir_(std::move(dump_dir)),
      exe_(std::move(exe)),
      tmpdir_via_symlink_(tmpdir_via_symlink) {
  if (exe_.empty()) exe_ = StagedBinary("leakapp");
  Start();
}

NamespacedLeakapp::~NamespacedLeakapp() {
  // While nsenter still waits for it: it is reaped, its pid not reused.
  if (host_pid_ > 0 && process_->running()) ::kill(host_pid_, SIGKILL);
  process_->Wait(5s);
}

void NamespacedLeakapp::Start() {
  port_ = 0;  // leakapp binds a free one and logs it (WaitUntilReady reads it)
  host_pid_ = ns_pid_ = 0;
  // The target's own "container": its /proc, a /tmp no one else sees, uid
  // 65534, and dumps only in dump_dir.
  const std::string script =
      std::string("mount -t proc proc /proc && mount -t tmpfs tmpfs /tmp && ") + "mkdir -m 0700 " +
      kTargetTmpdir + " && chown 65534:65534 " + kTargetTmpdir + " && ln -s " + kTargetTmpdir +
      " " + kTargetTmpdirLink + " && exec \"$@\"";
  std::vector<std::string> argv = {kUnshare,  "--mount", "--propagation", "private",
                                   "/bin/sh", "-c",      script,          "sh"};
  for (const char* a :
       {kSetpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "/usr/bin/env"}) {
    argv.push_back(a);
  }
  argv.push_back(std::string("TMPDIR=") +
                 (tmpdir_via_symlink_ ? kTargetTmpdirLink : kTargetTmpdir));
  argv.push_back("CPPDIAG_DUMP_NAME=" + dump_dir_ + "/core.%p.%r");
  argv.insert(argv.end(), {exe_, "--bind", "127.0.0.1", "--port", "0"});
  process_ = std::make_unique<Subprocess>(
      SubprocessOptions{.argv = pod_.Enter(argv), .unset_env = kUnsetEnv});
}

::testing::AssertionResult NamespacedLeakapp::WaitUntilReady() {
  if (port_ == 0) {
    if (std::optional<int> port = WaitForListeningPort(*process_, 10s)) port_ = *port;
  }
  bool ready = port_ != 0 && PollUntil(
                                 [&] {
                                   if (!process_->running()) return true;
                                   if (host_pid_ == 0) host_pid_ = ProgramChildOf(process_->pid());
                                   if (host_pid_ == 0) return false;
                                   auto res = Get("/readyz");
                                   return res && res->status == 200;
                                 },
                                 10s);
  if (!process_->running()) {
    return ::testing::AssertionFailure()
           << "leakapp ended before it was ready: " << process_->Wait({})->ToString() << "\n"
           << Output();
  }
  if (!ready) return ::testing::AssertionFailure() << "leakapp not ready in 10 s\n" << Output();
  ns_pid_ = NamespacePid(host_pid_);
  return ::testing::AssertionSuccess();
}

bool NamespacedLeakapp::running() {
  return process_->running() && host_pid_ > 0 && ::kill(host_pid_, 0) == 0;
}

httplib::Result NamespacedLeakapp::Get(const std::string& target) const {
  httplib::Client client("127.0.0.1", port_);
  client.set_connection_timeout(2s);
  client.set_read_timeout(10s);
  return client.Get(target);
}

std::set<pid_t> NamespacedLeakapp::ThreadIds() const {
  std::set<pid_t> out;
  if (auto tids = ListThreads(host_pid_)) {
    for (pid_t tid : *tids) out.insert(NamespacePid(tid));
  }
  return out;
}

std::string NamespacedLeakapp::Output() const {
  return "--- target stdout ---\n" + process_->Stdout() + "--- target stderr ---\n" +
         process_->Stderr();
}

std::string ToolRun::ToString() const {
  return "exit " + (exit_code ? std::to_string(*exit_code) : std::string("(none)")) +
         "\n--- stdout ---\n" + out + "--- stderr ---\n" + err;
}

std::unique_ptr<Subprocess> StartInToolNamespace(const PidNamespace& pod,
                                                 const Privileges& privileges,
                                                 const std::vector<std::string>& argv,
                                                 const ToolOptions& options) {
  // The tool's own "container": its /proc, its own /tmp, and, when asked, a
  // service account namespace file as Kubernetes mounts it.
  std::string script = "mount -t proc proc /proc && mount -t tmpfs tmpfs /tmp && ";
  if (!options.k8s_namespace.empty()) {
    script +=
        "mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io/serviceaccount && "
        "printf %s \"$CPPDIAG_TEST_K8S_NAMESPACE\" "
        "> /run/secrets/kubernetes.io/serviceaccount/namespace && ";
  }
  script += "exec \"$@\"";
  std::vector<std::string> full = {kUnshare, "--mount", "--propagation", "private"};
  if (options.own_network) full.push_back("--net");
  full.insert(full.end(), {"/bin/sh", "-c", script, "sh"});
  full.insert(full.end(), privileges.begin(), privileges.end());
  full.insert(full.end(), argv.begin(), argv.end());
  SubprocessOptions so{.argv = pod.Enter(full), .env = options.env, .unset_env = kUnsetEnv};
  if (!options.k8s_namespace.empty()) so.env["CPPDIAG_TEST_K8S_NAMESPACE"] = options.k8s_namespace;
  return std::make_unique<Subprocess>(so);
}

ToolRun Finish(Subprocess& process, std::chrono::seconds timeout) {
  ToolRun run;
  auto t = process.Wait(timeout);
  if (t) run.exit_code = t->exit_code;
  run.out = process.Stdout();
  run.err = process.Stderr();
  if (!t) run.err += "(timed out)\n";
  return run;
}

ToolRun RunInToolNamespace(const PidNamespace& pod, const Privileges& privileges,
                           const std::vector<std::string>& argv, const ToolOptions& options) {
  auto p = StartInToolNamespace(pod, privileges, argv, options);
  return Finish(*p, options.timeout);
}

pid_t NamespacePid(pid_t pid) {
  auto text = ReadFileToString("/proc/" + std::to_string(pid) + "/status");
  if (!text) return 0;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("NSpid:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    pid_t last = 0, v = 0;
    while (fields >> v) last = v;
    return last;
  }
  return 0;
}

SharedDir::SharedDir(uid_t owner) : dir_("cppdiag-ondemand", "/var/tmp") {
  const std::string& path_ = dir_.path();
  if (::chown(path_.c_str(), owner, owner) != 0 || ::chmod(path_.c_str(), 0700) != 0) {
    throw std::runtime_error("cannot give " + path_ + " to uid " + std::to_string(owner));
  }
}

std::vector<std::string> SharedDir::Files() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_.path(), ec)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace cppdiag::testing
