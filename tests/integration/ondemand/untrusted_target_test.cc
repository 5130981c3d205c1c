// The CLI, run as root, against targets that work against it
// (hostile_target.c, with libcppdiag preloaded): what it prints of a target
// reaches the terminal escaped and the commands it tells the user to paste
// quoted (a pasted line runs nothing of the target's); a FIFO or a symbolic
// link planted at a mapping's path is not opened (opening a FIFO with no
// writer would block `heap snapshot` for ever: every run here has a
// deadline, so a regression fails rather than hangs); and a target that dies
// during a dump gets one line saying so and a non-zero exit.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/heap/pprof.h"
#include "integration/ondemand/hostile_target.h"
#include "support/status_matchers.h"
#include "support/subprocess.h"

namespace cppdiag::testing {
namespace {

using ::cppdiag::testing::IsOk;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class TempDir {
 public:
  explicit TempDir(const std::string& tag)
      : path_(fs::temp_directory_path() / ("cppdiag-" + tag + "-" + std::to_string(getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

std::unique_ptr<Subprocess> StartHostile(std::vector<std::string> args, const TempDir& dumps) {
  args.insert(args.begin(), HOSTILE_TARGET);
  auto p = std::make_unique<Subprocess>(SubprocessOptions{
      .argv = std::move(args),
      .env = {{"LD_PRELOAD", CPPDIAG_PRELOAD_LIB},
              {"CPPDIAG_DUMP_DIR", dumps.str()},
              // A dump name a shell would run code from, unquoted.
              {"CPPDIAG_DUMP_NAME", dumps / "core.%e.'$(touch pwned-path)'.%p"}}});
  EXPECT_TRUE(p->WaitForOutput("ready", 30s)) << p->Stdout() << p->Stderr();
  return p;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) {
    s.replace(p, from.size(), to);
  }
}

// The NUL-separated arguments of one recorded kubectl call.
std::vector<std::string> Args(const std::string& file) {
  std::vector<std::string> out;
  std::string all = ReadAll(file);
  for (size_t p = 0; p < all.size();) {
    size_t end = all.find('\0', p);
    if (end == std::string::npos) break;
    out.push_back(all.substr(p, end - p));
    p = end + 1;
  }
  return out;
}

TEST(UntrustedTarget, PsShowsAHostileNameAndCommandLineEscaped) {
  TempDir dumps("ps-hostile");
  auto target = StartHostile({"name"}, dumps);
  CliRun ps = Cppdiag({"ps"}, 60s);
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  std::string line;
  for (const auto& l : Lines(ps.out)) {
    std::istringstream in(l);
    pid_t pid = 0;
    if (in >> pid && pid == target->pid()) line = l;
  }
  ASSERT_FALSE(line.empty()) << ps.out;
  EXPECT_EQ(ps.out.find('\x1b'), std::string::npos) << "raw ESC in: " << line;
  EXPECT_EQ(ps.out.find('\x07'), std::string::npos) << "raw BEL in: " << line;
  EXPECT_NE(line.find("\\x1b]0;pwned\\x07"), std::string::npos) << line;
  EXPECT_NE(line.find("$(touch /tmp/cppdiag-pwned-argv)"), std::string::npos) << line;
}

TEST(UntrustedTarget, AutoCollectQuotesTheCommandsItTellsTheUserToPaste) {
  TempDir dumps("auto-hostile");
  TempDir shell("auto-hostile-shell");
  fs::remove("/tmp/cppdiag-pwned-argv");
  auto target = StartHostile({"name"}, dumps);
  const std::string pod = "pod'$(touch pwned-pod)";
  Subprocess cli(
      {.argv = {BuiltBinary("cppdiag"), "auto-collect", "--name", kHostileComm, "--type", "mini"},
       .env = {{"HOSTNAME", pod}}});
  auto end = cli.Wait(120s);
  ASSERT_TRUE(end && end->exit_code == 0) << cli.Stdout() << cli.Stderr();
  std::string out = cli.Stdout() + cli.Stderr();
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_EQ(out.find('\x07'), std::string::npos) << out;

  std::string dump;
  for (const auto& e : fs::directory_iterator(dumps.str())) dump = e.path().string();
  ASSERT_FALSE(dump.empty()) << out;

  // Paste the two commands into bash, as the user would, placeholders filled
  // in; kubectl records its arguments.
  std::string script = "n=0; kubectl() { n=$((n+1)); printf '%s\\0' \"$@\" > args.$n; }\n";
  for (auto line : Lines(cli.Stdout())) {
    if (line.rfind("  kubectl ", 0) != 0) continue;
    for (const char* p : {"<namespace>", "<app-container>", "<debugger>"}) {
      ReplaceAll(line, p, "PLACEHOLDER");
    }
    script += line + "\n";
  }
  std::ofstream(shell / "paste.sh") << script;
  std::string bash = RunToCompletion({"/bin/bash", "-c", "cd " + shell.str() + " && . ./paste.sh"});
  EXPECT_FALSE(fs::exists(shell / "pwned-path")) << script << bash;
  EXPECT_FALSE(fs::exists(shell / "pwned-pod")) << script << bash;
  EXPECT_FALSE(fs::exists("/tmp/cppdiag-pwned-argv")) << script << bash;

  std::string base = fs::path(dump).filename().string();
  auto cp = Args(shell / "args.1");
  ASSERT_EQ(cp.size(), 5u) << script;
  EXPECT_EQ(cp[0], "cp");
  EXPECT_TRUE(cp[1].ends_with("/" + pod + ":" + dump)) << cp[1] << "\n" << script;
  EXPECT_EQ(cp[2], "./" + base) << script;
  auto exec = Args(shell / "args.2");
  ASSERT_EQ(exec.size(), 9u) << script;
  EXPECT_EQ(exec[3], pod);
  EXPECT_EQ(exec[8], "/proc/" + std::to_string(target->pid()) + "/root" + dump) << script;
  EXPECT_TRUE(fs::exists(shell / base)) << "the redirection's file: " << script;
}

// A heap snapshot of a target whose mapping's file was replaced by `trap`.
void SnapshotFinishesAndLeavesTheTrapUnsymbolized(const std::string& trap) {
  TempDir dir("trap-" + trap);
  auto target = StartHostile({trap, HOSTILE_TARGET, dir.str()}, dir);
  std::string profile = dir / "heap.pb.gz";
  CliRun snap = Cppdiag({"heap", "snapshot", "-p", std::to_string(target->pid()), "-o", profile},
                        60s);  // a FIFO opened for reading would block here for ever
  ASSERT_EQ(snap.exit_code, 0) << "(-1: did not end) " << snap.out << snap.err;
  auto p = cli::pprof::ReadProfileFile(profile);
  ASSERT_THAT(p, IsOk());
  bool found = false;
  for (const auto& m : p->mappings) {
    if (m.filename.find(kTrapLibrary) == std::string::npos) continue;
    found = true;
    EXPECT_FALSE(m.has_functions) << m.filename;
  }
  EXPECT_TRUE(found) << "the trap's mapping is not in the profile";
}

TEST(UntrustedTarget, HeapSnapshotDoesNotOpenAFifoAtAMappingPath) {
  SnapshotFinishesAndLeavesTheTrapUnsymbolized("fifo");
}

TEST(UntrustedTarget, HeapSnapshotDoesNotFollowASymlinkAtAMappingPath) {
  SnapshotFinishesAndLeavesTheTrapUnsymbolized("symlink");
}

TEST(DyingTarget, DumpCollectSaysInOneLineThatTheTargetExitedAndFails) {
  TempDir dumps("dying");
  // A few hundred MiB: the full dump takes long enough to be killed during it.
  Subprocess target(
      {.argv = {HEAP_LEAKY_C, "leak", "512"},
       .env = {{"LD_PRELOAD", CPPDIAG_PRELOAD_LIB}, {"CPPDIAG_DUMP_DIR", dumps.str()}}});
  ASSERT_TRUE(target.WaitForOutput("leaked", 60s)) << target.Stdout() << target.Stderr();
  Subprocess cli(
      {.argv = {BuiltBinary("cppdiag"), "dump", "collect", "-p", std::to_string(target.pid()),
                "--type", "full", "-o", dumps / "core.dying"}});
  // The first progress frame: the dump has started.
  ASSERT_TRUE(cli.WaitForOutput("Writing full dump", 60s)) << cli.Stdout() << cli.Stderr();
  target.Signal(SIGKILL);  // not reaped until the CLI is done: a zombie it can read
  auto end = cli.Wait(120s);
  ASSERT_TRUE(end.has_value()) << "the CLI did not end";
  ASSERT_TRUE(end->exit_code.has_value()) << end->ToString();
  EXPECT_NE(*end->exit_code, 0) << cli.Stdout();
  std::string err = cli.Stderr();
  EXPECT_EQ(Lines(err).size(), 1u) << err;
  EXPECT_NE(err.find("cppdiag: the target (pid " + std::to_string(target.pid()) +
                     ") exited during the dump"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("SIGKILL"), std::string::npos) << err;
  EXPECT_EQ(cli.Stdout().find("Complete"), std::string::npos) << cli.Stdout();
}

}  // namespace
}  // namespace cppdiag::testing
