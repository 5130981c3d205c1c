// cppdiag auto-collect: the entrypoint of a shell-less debug image (what the
// .NET app's "pid-finder" image does). Finds the one instrumented process in
// this PID namespace, asks it to write its own dump, says where the dump is
// and how to fetch it with `kubectl cp`, then waits --linger (a duration) so
// the debug container is still there while the dump is copied.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "cli/discovery.h"
#include "cli/display.h"
#include "cli/dump_request.h"
#include "cli/options.h"
#include "cli/target_root.h"

namespace cppdiag::cli {
namespace {

constexpr const char* kNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
// Placeholders in the commands printed, for the user to fill in.
constexpr const char* kUnknownNamespace = "<namespace>";
constexpr const char* kUnknownPod = "<pod>";

struct AutoCollectOptions {
  std::string name;
  std::string output;
  std::string type;
  std::chrono::nanoseconds linger{0};
};

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool Matches(const DiagTarget& t, const std::string& name) {
  return t.name == name || (!t.argv.empty() && Basename(t.argv.front()) == name);
}

std::string Describe(const std::vector<DiagTarget>& targets) {
  std::string out;
  for (const auto& t : targets) {
    out += (out.empty() ? "" : ", ") + std::to_string(t.pid) + " (" + t.name + ")";
  }
  return out;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// The pod's namespace: from our own service account mount, else from the
// target's (a debug container often has none), else kUnknownNamespace. The
// target's is read as the target sees it (/var/run -> /run and the mount's
// namespace -> ..data/namespace resolved in its filesystem, never out of
// it), and only if it is a small regular file: the target may have planted
// a FIFO or a link to a device there.
std::string PodNamespace(const DiagTarget& target) {
  for (const std::string& root :
       {std::string("/"), "/proc/" + std::to_string(target.pid) + "/root"}) {
    auto fs = TargetRoot::Open(root);
    if (!fs) continue;
    auto text = fs->ReadSmallFile(kNamespaceFile, 4096, LastLink::kFollow);
    if (text && !Trim(*text).empty()) {
      return Trim(*text);
    }
  }
  return kUnknownNamespace;
}

// The pod's name: containers of a pod share its UTS namespace, whose host name
// is the pod's name.
std::string PodName() {
  if (const char* h = std::getenv("HOSTNAME"); h != nullptr && *h != '\0') return h;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0 && host[0] != '\0') return host;
  return kUnknownPod;
}

// Waits `how_long`, or less if SIGTERM or SIGINT comes: as the first process
// of a container, whose signals without a handler are ignored, a plain sleep
// would hold `kubectl delete` up until its grace period ends.
void Linger(std::chrono::nanoseconds how_long) {
  if (how_long <= std::chrono::nanoseconds::zero()) return;
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  auto deadline = std::chrono::steady_clock::now() + how_long;
  for (;;) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds::zero()) return;
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(left);
    timespec ts{static_cast<time_t>(secs.count()),
                static_cast<long>(std::chrono::nanoseconds(left - secs).count())};
    int sig = ::sigtimedwait(&stop, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      std::printf("Stopped waiting (%s)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      return;
    }
    if (sig < 0 && errno != EINTR && errno != EAGAIN) return;
  }
}

Result<DiagTarget> ChooseTarget(const std::string& name) {
  int unreadable = 0;
  std::vector<DiagTarget> all = FindTargets("/proc", &unreadable);
  std::vector<DiagTarget> chosen;
  for (auto& t : all) {
    if (name.empty() || Matches(t, name)) chosen.push_back(t);
  }
  if (chosen.size() == 1) return chosen.front();
  if (chosen.size() > 1) {
    return Error(EEXIST, "",
                 std::to_string(chosen.size()) + " processes with a diagnostic socket" +
                     (name.empty() ? "" : " named " + name) + ": " + Describe(chosen) +
                     "; name one with --name, or use `cppdiag dump collect -p PID`");
  }
  std::string why = "no process with a diagnostic socket" +
                    (name.empty() ? std::string() : " named " + name) + " in this PID namespace";
  if (!all.empty()) {
    why += " (others: " + Describe(all) + ")";
  } else {
    if (unreadable > 0) {
      why += " (" + std::to_string(unreadable) +
             " processes could not be inspected: permission denied; run as the target's uid)";
    }
    why +=
        "; is the debug container started with --target=<app container>, or the pod with "
        "shareProcessNamespace: true?";
  }
  return Error(ESRCH, "", why);
}

int AutoCollect(const AutoCollectOptions& o) {
  auto target = ChooseTarget(o.name);
  if (!target) return Fail(target.error().message());
  std::printf("Target: process %d (%s): %s\n", target->pid, ForTerminal(target->name).c_str(),
              ForTerminal(target->command_line).c_str());
  std::fflush(stdout);
  auto dump = RequestDump(*target, {.path = o.output, .type = o.type, .overwrite = false});
  if (!dump) return Fail(dump.error().message());

  std::printf("The dump is in the target's filesystem: %s\n", ForTerminal(dump->path).c_str());
  std::string here = "/proc/" + std::to_string(target->pid) + "/root" + dump->path;
  struct stat st {};
  if (::stat(here.c_str(), &st) == 0) {
    std::printf("  (from this container: %s)\n", ForTerminal(here).c_str());
  }
  // The lines are for pasting into a shell: each word that comes from the
  // target (the dump's path, the namespace) or the pod is quoted; the
  // placeholders are left for the user to fill in.
  auto word = [](const std::string& s, const char* placeholder) {
    return s == placeholder ? s : ShellWord(s);
  };
  std::string ns_word = word(PodNamespace(*target), kUnknownNamespace);
  std::string pod = word(PodName(), kUnknownPod), base = ShellWord(Basename(dump->path));
  // kubectl cp runs tar in the container it copies from: a FROM-scratch app
  // image has none, hence the second way, through any container of the pod
  // that has cat (pids are the same in a pod's shared PID namespace).
  std::printf(
      "Fetch it with (kubectl cp needs tar in <app-container>):\n"
      "  kubectl cp %s/%s:%s ./%s -c <app-container>\n"
      "or through a container with cat in this PID namespace (e.g. a debugger sidecar):\n"
      "  kubectl exec -n %s %s -c <debugger> -- cat %s > ./%s\n",
      ns_word.c_str(), pod.c_str(), ShellWord(dump->path).c_str(), base.c_str(), ns_word.c_str(),
      pod.c_str(), ShellWord(here).c_str(), base.c_str());
  if (o.linger.count() > 0) {
    std::printf("Waiting %s (--linger) so the dump can be copied\n",
                FormatSeconds(o.linger).c_str());
  }
  std::fflush(stdout);
  Linger(o.linger);
  return 0;
}

}  // namespace

void AddAutoCollectCommand(CLI::App& app, int* exit_code) {
  auto opts = std::make_shared<AutoCollectOptions>();
  auto* cmd = app.add_subcommand(
      "auto-collect",
      "Find the one process with a diagnostic socket, have it dump itself, say where the dump "
      "is (entrypoint of a shell-less debug image)");
  cmd->add_option("--name", opts->name,
                  "Only the process whose name (comm) or argv[0] file name is this");
  cmd->add_option("-o,--output", opts->output,
                  "Dump path in the target's filesystem (default: its CPPDIAG_DUMP_NAME)");
  AddDumpTypeOption(cmd, &opts->type);
  AddDurationOption(cmd, "--linger", &opts->linger,
                    "How long to wait after the dump, so `kubectl cp` can fetch it (90s, 5m)",
                    Zero::kAllowed);
  cmd->callback([opts, exit_code] { *exit_code = AutoCollect(*opts); });
}

}  // namespace cppdiag::cli
