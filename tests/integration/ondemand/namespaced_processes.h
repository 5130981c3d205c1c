// Processes in real namespaces for the on-demand dump tests, laid out like a
// Kubernetes pod with a shared PID namespace: one PID namespace (its own, so
// other tests' processes are not seen), and in it each process with its own
// mount namespace, its own /proc and a private tmpfs /tmp (no shared /tmp,
// as between two containers of a pod).
//
//   PidNamespace pod;
//   if (!pod.ok()) GTEST_SKIP() << pod.why_not();
//   NamespacedLeakapp app(pod, dumps.path());           // uid 65534
//   ASSERT_TRUE(app.WaitUntilReady());
//   ToolRun ps = RunInToolNamespace(pod, kNobodyNoCaps, {cppdiag, "ps"});
//
// Needs root, unshare, nsenter and setpriv (util-linux).
#pragma once

#include <sys/types.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/scoped_temp_dir.h"
#include "support/subprocess.h"

namespace cppdiag::testing {

// The unprivileged uid the targets run as, and another one.
inline constexpr uid_t kTargetUid = 65534;
inline constexpr uid_t kOtherUid = 65533;

// How the tool runs: a prefix run before the program (empty: root with every
// capability).
using Privileges = std::vector<std::string>;
extern const Privileges kRootAllCaps;
extern const Privileges kRootNoCaps;    // uid 0, no capabilities at all
extern const Privileges kNobodyNoCaps;  // uid 65534 (the target's), no capabilities
extern const Privileges kOtherNoCaps;   // uid 65533, no capabilities

// A fresh PID namespace whose init is `sleep infinity`; killing it (on
// destruction) kills every process in the namespace.
class PidNamespace {
 public:
  PidNamespace();
  bool ok() const { return init_pid_ > 0; }
  const std::string& why_not() const { return why_not_; }
  pid_t init_pid() const { return init_pid_; }  // as this test sees it
  // `argv` prefixed so that it runs in this PID namespace.
  std::vector<std::string> Enter(const std::vector<std::string>& argv) const;

 private:
  std::unique_ptr<Subprocess> holder_;
  pid_t init_pid_ = 0;
  std::string why_not_;
};

// The target's TMPDIR, in its private /tmp: not /tmp itself, so a tool that
// does not read the target's environment looks in the wrong place.
inline constexpr const char* kTargetTmpdir = "/tmp/app-tmp";
// An absolute symbolic link to it, for a target started with
// `tmpdir_via_symlink`: TMPDIR=kTargetTmpdirLink.
inline constexpr const char* kTargetTmpdirLink = "/tmp/app-link";

// leakapp (or `exe`, e.g. a symlink to it) in `pod`, in its own mount
// namespace with a private tmpfs /tmp, as uid 65534, with
// TMPDIR=kTargetTmpdir and CPPDIAG_DUMP_NAME=<dump_dir>/core.%p.%r.
class NamespacedLeakapp {
 public:
  NamespacedLeakapp(const PidNamespace& pod, std::string dump_dir, std::string exe = "",
                    bool tmpdir_via_symlink = false);
  ~NamespacedLeakapp();  // kills the target
  NamespacedLeakapp(const NamespacedLeakapp&) = delete;
  NamespacedLeakapp& operator=(const NamespacedLeakapp&) = delete;

  // Reads the port leakapp bound (it starts with --port 0) from its log, then
  // waits for the process to appear and GET /readyz to answer 200 (10 s).
  ::testing::AssertionResult WaitUntilReady();

  pid_t host_pid() const { return host_pid_; }  // as this test sees it
  pid_t ns_pid() const { return ns_pid_; }      // as the pod sees it
  int port() const { return port_; }
  bool running();
  httplib::Result Get(const std::string& target) const;
  // Namespace thread ids (as in the pod) of every thread now.
  std::set<pid_t> ThreadIds() const;
  std::string Stderr() const { return process_->Stderr(); }
  std::string Output() const;

 private:
  void Start();

  const PidNamespace& pod_;
  std::string dump_dir_;
  std::string exe_;
  bool tmpdir_via_symlink_ = false;
  int port_ = 0;
  pid_t host_pid_ = 0;
  pid_t ns_pid_ = 0;
  std::unique_ptr<Subprocess> process_;
};

struct ToolRun {
  std::optional<int> exit_code;  // nullopt: killed by a signal or timed out
  std::string out;
  std::string err;
  std::string ToString() const;
};

struct ToolOptions {
  std::map<std::string, std::string> env;
  // If set, the tool's mount namespace gets
  // /var/run/secrets/kubernetes.io/serviceaccount/namespace with this content.
  std::string k8s_namespace;
  // Also a network namespace of its own: the target's abstract socket is out
  // of reach, only /proc/<pid>/root leads to its socket.
  bool own_network = false;
  std::chrono::seconds timeout{120};
};

// Starts `argv` in `pod`, in another mount namespace with its own /proc and
// a private tmpfs /tmp, with `privileges`.
std::unique_ptr<Subprocess> StartInToolNamespace(const PidNamespace& pod,
                                                 const Privileges& privileges,
                                                 const std::vector<std::string>& argv,
                                                 const ToolOptions& options = {});
// The same, to completion.
ToolRun RunInToolNamespace(const PidNamespace& pod, const Privileges& privileges,
                           const std::vector<std::string>& argv, const ToolOptions& options = {});
ToolRun Finish(Subprocess& process, std::chrono::seconds timeout);

// The first child of `parent` that is not one of the launchers (unshare,
// sh, setpriv, env, mount, nsenter): the program they exec'd in the end.
pid_t ProgramChildOf(pid_t parent);

// The innermost pid of NSpid in /proc/<pid>/status (a tid works too).
pid_t NamespacePid(pid_t pid);

// A directory under /var/tmp (outside every private /tmp), owned by `owner`,
// mode 0700, removed with what it holds on destruction.
class SharedDir {
 public:
  explicit SharedDir(uid_t owner);
  const std::string& path() const { return dir_.path(); }
  std::vector<std::string> Files() const;  // names, sorted

 private:
  ScopedTempDir dir_;
};

}  // namespace cppdiag::testing
