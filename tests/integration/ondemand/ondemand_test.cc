// On-demand dumps end to end, with real namespaces laid out like a pod: the
// real leakapp as uid 65534 in its own mount namespace with a private /tmp;
// cppdiag in another mount namespace (another "container" of the pod),
// finding it through /proc/<pid>/root and the target's TMPDIR (or the
// abstract socket), with and without capabilities. The target writes its own
// dump; gdb reads it with every thread; the target keeps serving.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <regex>
#include <thread>

#include "common/io.h"
#include "common/proc.h"
#include "common/raw_log.h"
#include "common/scoped_fd.h"
#include "diag/ipc/client.h"
#include "diag/ipc/protocol.h"
#include "integration/ondemand/namespaced_processes.h"
#include "support/status_matchers.h"

namespace cppdiag::testing {
namespace {

using ::cppdiag::testing::IsOk;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Staged: the tool runs in mount namespaces with their own /tmp, as other uids.
std::string Cppdiag() { return StagedBinary("cppdiag"); }

struct FileInfo {
  bool exists = false;
  bool is_symlink = false;
  uid_t uid = 0;
  mode_t mode = 0;
};

FileInfo Inspect(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return {};
  return {true, S_ISLNK(st.st_mode), st.st_uid, st.st_mode & 07777};
}

size_t Lines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Thread ids (LWP) gdb shows in a core.
std::set<pid_t> GdbThreads(const std::string& core, std::string* output) {
  *output = GdbBatch(BuiltBinary("leakapp"), core);
  std::set<pid_t> tids;
  static const std::regex kThread(R"(^[ *]+[0-9]+ +Thread 0x[0-9a-f]+ \(LWP ([0-9]+)\))");
  std::istringstream in(*output);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, kThread)) tids.insert(std::stoi(m[1]));
  }
  return tids;
}

// The path after "Writing <type> dump to ".
std::string WrittenPath(const std::string& out) {
  static const std::regex kWriting(R"(Writing [a-z]+ dump to (\S+))");
  std::smatch m;
  return std::regex_search(out, m, kWriting) ? m[1].str() : "";
}

class OnDemandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!pod_.ok()) GTEST_SKIP() << pod_.why_not();
  }
  // The target's socket file, reached from this (root, host) mount namespace.
  std::string SocketPath(NamespacedLeakapp& app) {
    auto stat = ReadProcStat(app.host_pid());
    EXPECT_THAT(stat, IsOk());
    return "/proc/" + std::to_string(app.host_pid()) + "/root" + kTargetTmpdir + "/" +
           ipc::SocketName(app.ns_pid(), stat ? stat->start_time_ticks : 0);
  }
  void ExpectServing(NamespacedLeakapp& app) {
    ASSERT_TRUE(app.running()) << app.Output();
    auto res = app.Get("/healthz");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
  }

  PidNamespace pod_;
  SharedDir dumps_{kTargetUid};
};

// ---- ps and dump collect from another mount namespace, three privilege levels

struct PrivilegeCase {
  const char* name;
  const Privileges* privileges;
};
void PrintTo(const PrivilegeCase& c, std::ostream* os) { *os << c.name; }

class PsAndDumpCollect : public OnDemandTest,
                         public ::testing::WithParamInterface<PrivilegeCase> {};

TEST_P(PsAndDumpCollect, ListsDumpsAndTheTargetWroteEveryThreadAndKeepsServing) {
  const Privileges& privileges = *GetParam().privileges;
  NamespacedLeakapp app(pod_, dumps_.path());
  ASSERT_TRUE(app.WaitUntilReady());

  ToolRun ps = RunInToolNamespace(pod_, privileges, {Cppdiag(), "ps"});
  ASSERT_EQ(ps.exit_code, 0) << ps.ToString();
  std::regex row("\\n +" + std::to_string(app.ns_pid()) + " +leakapp +\\S*leakapp --bind");
  EXPECT_TRUE(std::regex_search(ps.out, row)) << ps.ToString();

  std::set<pid_t> threads_before = app.ThreadIds();
  std::string core = dumps_.path() + "/core." + GetParam().name;
  ToolRun dump = RunInToolNamespace(
      pod_, privileges,
      {Cppdiag(), "dump", "collect", "-p", std::to_string(app.ns_pid()), "-o", core});
  ASSERT_EQ(dump.exit_code, 0) << dump.ToString() << app.Output();
  EXPECT_EQ(WrittenPath(dump.out), core) << dump.out;
  EXPECT_NE(dump.out.find("\nComplete"), std::string::npos) << dump.out;

  FileInfo info = Inspect(core);
  ASSERT_TRUE(info.exists) << dump.ToString();
  EXPECT_EQ(info.uid, kTargetUid) << "the target, not the tool, writes the dump";
  EXPECT_EQ(info.mode, 0600u);
  EXPECT_EQ(dumps_.Files(), std::vector<std::string>{fs::path(core).filename()})
      << "no temporary file left";

  std::string gdb_out;
  std::set<pid_t> in_core = GdbThreads(core, &gdb_out);
  for (pid_t tid : threads_before) {
    EXPECT_TRUE(in_core.count(tid)) << "thread " << tid << " missing from the dump\n" << gdb_out;
  }
  // The thread that served the request is the only one allowed in addition.
  EXPECT_LE(in_core.size(), threads_before.size() + 1) << gdb_out;
  EXPECT_EQ(gdb_out.find("is not a core dump"), std::string::npos) << gdb_out;

  ExpectServing(app);
}

INSTANTIATE_TEST_SUITE_P(OnDemand, PsAndDumpCollect,
                         ::testing::Values(PrivilegeCase{"RootAllCaps", &kRootAllCaps},
                                           PrivilegeCase{"RootNoCaps", &kRootNoCaps},
                                           PrivilegeCase{"TargetUidNoCaps", &kNobodyNoCaps}),
                         [](const auto& test) { return std::string(test.param.name); });

// The wrappers really take the privileges away.
TEST_F(OnDemandTest, ToolWithoutCapabilitiesHasNone) {
  for (const Privileges* p : {&kRootNoCaps, &kNobodyNoCaps}) {
    ToolRun run = RunInToolNamespace(pod_, *p, {"/bin/cat", "/proc/self/status"});
    ASSERT_EQ(run.exit_code, 0) << run.ToString();
    EXPECT_NE(run.out.find("CapEff:\t0000000000000000"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("CapPrm:\t0000000000000000"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("CapBnd:\t0000000000000000"), std::string::npos) << run.out;
  }
}

// With no shared network namespace there is no abstract socket to fall back
// on: the socket is found through /proc/<pid>/root and the target's TMPDIR
// (same uid, no capabilities); a tool that may not look there says why.
TEST_F(OnDemandTest, FindsTheSocketThroughProcRootAndTheTargetsTmpdir) {
  // TMPDIR an absolute symlink in the target's filesystem, which would lead
  // into the tool's own /tmp if followed through /proc/<pid>/root naively.
  NamespacedLeakapp app(pod_, dumps_.path(), "", /*tmpdir_via_symlink=*/true);
  ASSERT_TRUE(app.WaitUntilReady());
  ToolOptions isolated{.own_network = true};
  ToolRun ps = RunInToolNamespace(pod_, kNobodyNoCaps, {Cppdiag(), "ps"}, isolated);
  ASSERT_EQ(ps.exit_code, 0) << ps.ToString();
  EXPECT_NE(ps.out.find(" leakapp "), std::string::npos) << ps.ToString();
  std::string core = dumps_.path() + "/core.via-proc-root";
  ToolRun dump = RunInToolNamespace(pod_, kNobodyNoCaps,
                                    {Cppdiag(), "dump", "collect", "-p",
                                     std::to_string(app.ns_pid()), "--type", "mini", "-o", core},
                                    isolated);
  ASSERT_EQ(dump.exit_code, 0) << dump.ToString() << app.Output();
  EXPECT_EQ(Inspect(core).uid, kTargetUid);

  ToolRun denied = RunInToolNamespace(
      pod_, kRootNoCaps, {Cppdiag(), "dump", "collect", "-p", std::to_string(app.ns_pid())},
      isolated);
  EXPECT_NE(denied.exit_code, 0) << denied.ToString();
  EXPECT_EQ(Lines(denied.err), 1u) << denied.err;
  EXPECT_NE(denied.err.find("permission denied"), std::string::npos) << denied.err;
  ExpectServing(app);
}

// ---- auto-collect

TEST_F(OnDemandTest, AutoCollectDumpsTheOnlyTargetAndSaysHowToFetchIt) {
  NamespacedLeakapp app(pod_, dumps_.path());
  ASSERT_TRUE(app.WaitUntilReady());
  auto start = std::chrono::steady_clock::now();
  ToolRun run =
      RunInToolNamespace(pod_, kNobodyNoCaps, {Cppdiag(), "auto-collect", "--linger", "1"},
                         {.env = {{"HOSTNAME", "leakapp-7d9f-abcde"}}, .k8s_namespace = "team-a"});
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(run.exit_code, 0) << run.ToString() << app.Output();
  std::string core = dumps_.path() + "/core." + std::to_string(app.ns_pid()) + ".on-demand";
  EXPECT_EQ(WrittenPath(run.out), core) << run.out;
  EXPECT_NE(run.out.find("\nComplete"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("The dump is in the target's filesystem: " + core), std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("kubectl cp team-a/leakapp-7d9f-abcde:" + core + " ./" +
                         fs::path(core).filename().string() + " -c <app-container>"),
            std::string::npos)
      << run.out;
  // The way that needs no tar in the app's image: cat through /proc/<pid>/root.
  EXPECT_NE(run.out.find("kubectl exec -n team-a leakapp-7d9f-abcde -c <debugger> -- cat /proc/" +
                         std::to_string(app.ns_pid()) + "/root" + core + " > ./" +
                         fs::path(core).filename().string()),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("Waiting 1 s"), std::string::npos) << run.out;
  // It ended at the end of --linger, not by a signal; and not before it: a
  // lower bound on the linger, which no slow machine can break (that it
  // waits until told is the --linger 10m case below).
  EXPECT_EQ(run.out.find("Stopped waiting"), std::string::npos) << run.out;
  EXPECT_GE(elapsed, 1s);
  FileInfo info = Inspect(core);
  ASSERT_TRUE(info.exists) << run.ToString();
  EXPECT_EQ(info.uid, kTargetUid);
  EXPECT_EQ(info.mode, 0600u);
  ExpectServing(app);

  // No service account mount here, nor in the target: placeholders, and the
  // type asked for.
  std::string mini = dumps_.path() + "/mini.core";
  ToolRun plain = RunInToolNamespace(
      pod_, kRootNoCaps,
      {Cppdiag(), "auto-collect", "--type", "mini", "-o", mini, "--name", "leakapp"},
      {.env = {{"HOSTNAME", "pod-1"}}});
  ASSERT_EQ(plain.exit_code, 0) << plain.ToString();
  EXPECT_NE(plain.out.find("Writing mini dump to " + mini), std::string::npos) << plain.out;
  EXPECT_NE(
      plain.out.find("kubectl cp <namespace>/pod-1:" + mini + " ./mini.core -c <app-container>"),
      std::string::npos)
      << plain.out;
  EXPECT_TRUE(Inspect(mini).exists);

  // SIGTERM ends the wait at once (as when the debug pod is deleted). --linger
  // takes any duration (above: a bare number, seconds).
  auto lingering = StartInToolNamespace(pod_, kNobodyNoCaps,
                                        {Cppdiag(), "auto-collect", "--type", "mini", "-o",
                                         dumps_.path() + "/linger.core", "--linger", "10m"});
  ASSERT_TRUE(lingering->WaitForOutput("Waiting 600 s", 60s)) << Finish(*lingering, 0s).ToString();
  pid_t tool = ProgramChildOf(lingering->pid());
  ASSERT_GT(tool, 0);
  ::kill(tool, SIGTERM);
  ToolRun stopped = Finish(*lingering, 10s);
  EXPECT_EQ(stopped.exit_code, 0) << stopped.ToString();
  EXPECT_NE(stopped.out.find("Stopped waiting (SIGTERM)"), std::string::npos) << stopped.out;
}

TEST_F(OnDemandTest, AutoCollectRefusesToChooseBetweenTwoTargetsUnlessNamed) {
  // A second target with another name: a symlink to leakapp (comm and argv[0]
  // are the link's name).
  std::string link = dumps_.path() + "/otherapp";
  fs::create_symlink(StagedBinary("leakapp"), link);
  NamespacedLeakapp first(pod_, dumps_.path());
  NamespacedLeakapp second(pod_, dumps_.path(), link);
  ASSERT_TRUE(first.WaitUntilReady());
  ASSERT_TRUE(second.WaitUntilReady());
  std::vector<std::string> before = dumps_.Files();

  ToolRun both = RunInToolNamespace(pod_, kNobodyNoCaps, {Cppdiag(), "auto-collect"});
  EXPECT_NE(both.exit_code, 0) << both.ToString();
  EXPECT_EQ(both.out, "");
  EXPECT_EQ(Lines(both.err), 1u) << both.err;
  EXPECT_EQ(both.err.rfind("cppdiag: 2 processes with a diagnostic socket", 0), 0u) << both.err;
  EXPECT_NE(both.err.find(std::to_string(first.ns_pid()) + " (leakapp)"), std::string::npos)
      << both.err;
  EXPECT_NE(both.err.find(std::to_string(second.ns_pid()) + " (otherapp)"), std::string::npos)
      << both.err;
  EXPECT_EQ(dumps_.Files(), before) << "nothing written";

  ToolRun named =
      RunInToolNamespace(pod_, kNobodyNoCaps, {Cppdiag(), "auto-collect", "--name", "otherapp"});
  ASSERT_EQ(named.exit_code, 0) << named.ToString();
  std::string core = dumps_.path() + "/core." + std::to_string(second.ns_pid()) + ".on-demand";
  EXPECT_EQ(WrittenPath(named.out), core) << named.out;
  EXPECT_TRUE(Inspect(core).exists);

  ToolRun nosuch =
      RunInToolNamespace(pod_, kNobodyNoCaps, {Cppdiag(), "auto-collect", "--name", "nosuch"});
  EXPECT_NE(nosuch.exit_code, 0) << nosuch.ToString();
  EXPECT_EQ(Lines(nosuch.err), 1u) << nosuch.err;
  EXPECT_NE(nosuch.err.find("no process with a diagnostic socket named nosuch"), std::string::npos)
      << nosuch.err;
  ExpectServing(first);
  ExpectServing(second);
}

TEST_F(OnDemandTest, AutoCollectFailsWhenThereIsNoTarget) {
  ToolRun run = RunInToolNamespace(pod_, kNobodyNoCaps, {Cppdiag(), "auto-collect"});
  EXPECT_NE(run.exit_code, 0) << run.ToString();
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(Lines(run.err), 1u) << run.err;
  EXPECT_EQ(run.err.rfind("cppdiag: no process with a diagnostic socket in this PID namespace", 0),
            0u)
      << run.err;
}

// ---- refusals

TEST_F(OnDemandTest, RefusesPathsOutsideTheDumpDirectory) {
  NamespacedLeakapp app(pod_, dumps_.path());
  ASSERT_TRUE(app.WaitUntilReady());
  SharedDir elsewhere(kTargetUid);  // writable by the target, but not its dump directory
  std::string tmp_root = "/proc/" + std::to_string(app.host_pid()) + "/root/tmp";
  auto tmp_before = fs::directory_iterator(tmp_root);
  size_t tmp_entries = static_cast<size_t>(std::distance(tmp_before, fs::directory_iterator()));

  for (const std::string& path :
       {elsewhere.path() + "/core.x", std::string("/tmp/core.x"),
        dumps_.path() + "/../" + fs::path(elsewhere.path()).filename().string() + "/core.y",
        std::string("relative/../../core.z")}) {
    ToolRun run = RunInToolNamespace(
        pod_, kNobodyNoCaps,
        {Cppdiag(), "dump", "collect", "-p", std::to_string(app.ns_pid()), "-o", path});
    EXPECT_NE(run.exit_code, 0) << path << "\n" << run.ToString();
    EXPECT_EQ(run.out, "") << path;
    EXPECT_EQ(Lines(run.err), 1u) << path << "\n" << run.err;
    EXPECT_EQ(
        run.err.rfind("cppdiag: dump of process " + std::to_string(app.ns_pid()) + " failed: ", 0),
        0u)
        << run.err;
  }
  EXPECT_EQ(dumps_.Files(), std::vector<std::string>{});
  EXPECT_EQ(elsewhere.Files(), std::vector<std::string>{});
  auto tmp_after = fs::directory_iterator(tmp_root);
  EXPECT_EQ(static_cast<size_t>(std::distance(tmp_after, fs::directory_iterator())), tmp_entries)
      << "nothing written in the target's /tmp";
  ExpectServing(app);
}

TEST_F(OnDemandTest, RefusesASymlinkPlantedAtThePath) {
  NamespacedLeakapp app(pod_, dumps_.path());
  ASSERT_TRUE(app.WaitUntilReady());
  SharedDir victim_dir(kTargetUid);
  std::string victim = victim_dir.path() + "/victim";
  std::string planted = dumps_.path() + "/core.planted";
  fs::create_symlink(victim, planted);
  ASSERT_EQ(::lchown(planted.c_str(), kTargetUid, kTargetUid), 0);

  for (bool overwrite : {false, true}) {
    std::vector<std::string> argv = {
        Cppdiag(), "dump", "collect", "-p", std::to_string(app.ns_pid()), "-o", planted};
    if (overwrite) argv.push_back("--overwrite");
    ToolRun run = RunInToolNamespace(pod_, kNobodyNoCaps, argv);
    EXPECT_NE(run.exit_code, 0) << run.ToString();
    EXPECT_EQ(Lines(run.err), 1u) << run.err;
    EXPECT_NE(run.err.find("symbolic link"), std::string::npos) << run.err;
  }
  EXPECT_FALSE(Inspect(victim).exists) << "the link was followed";
  EXPECT_TRUE(Inspect(planted).is_symlink) << "the link was replaced";
  EXPECT_EQ(dumps_.Files(), std::vector<std::string>{"core.planted"});
  ExpectServing(app);
}

TEST_F(OnDemandTest, RefusesAPeerOfAnotherUid) {
  NamespacedLeakapp app(pod_, dumps_.path());
  ASSERT_TRUE(app.WaitUntilReady());
  ToolRun run = RunInToolNamespace(
      pod_, kOtherNoCaps, {Cppdiag(), "dump", "collect", "-p", std::to_string(app.ns_pid())});
  EXPECT_NE(run.exit_code, 0) << run.ToString();
  EXPECT_EQ(Lines(run.err), 1u) << run.err;
  EXPECT_NE(run.err.find("peer uid " + std::to_string(kOtherUid) + " may not use"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(dumps_.Files(), std::vector<std::string>{});
  std::string refusal = "refused diagnostic request from pid";
  ASSERT_TRUE(PollUntil([&] { return app.Stderr().find(refusal) != std::string::npos; }, 5s))
      << app.Output();
  EXPECT_NE(app.Stderr().find("uid " + std::to_string(kOtherUid)), std::string::npos)
      << app.Output();
  ExpectServing(app);
}

// Sends `bytes` on a new connection and returns what comes back (until the
// server closes or 5 s pass).
std::string SendRaw(const std::string& socket_path, const std::string& bytes) {
  ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ADD_FAILURE() << "connect " << socket_path << ": " << ErrnoName(errno);
    return "";
  }
  timeval tv{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  (void)SendAllRaw(fd.get(), bytes.data(), bytes.size());  // the server may stop reading early
  std::string reply;
  char buf[4096];
  for (;;) {
    ssize_t n = HANDLE_EINTR(::read(fd.get(), buf, sizeof buf));
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  return reply;
}

TEST_F(OnDemandTest, SurvivesRandomBytesThenServesANormalRequest) {
  NamespacedLeakapp app(pod_, dumps_.path());
  ASSERT_TRUE(app.WaitUntilReady());
  std::mt19937 rng(42);
  std::string noise(size_t{64} * 1024, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  std::string socket = SocketPath(app);

  // Noise from the first byte: bad magic.
  std::string reply = SendRaw(socket, noise);
  ASSERT_GE(reply.size(), ipc::kHeaderSize);
  auto header = ipc::DecodeHeader(std::string_view(reply).substr(0, ipc::kHeaderSize), 1 << 20);
  ASSERT_THAT(header, IsOk());
  EXPECT_EQ(header->code, static_cast<uint16_t>(ipc::ReplyStatus::kError));

  // A valid header announcing 64 KiB of noise: not JSON.
  std::string frame = ipc::EncodeFrame(static_cast<uint16_t>(ipc::Command::kDump), noise);
  reply = SendRaw(socket, frame);
  ASSERT_GE(reply.size(), ipc::kHeaderSize);
  header = ipc::DecodeHeader(std::string_view(reply).substr(0, ipc::kHeaderSize), 1 << 20);
  ASSERT_THAT(header, IsOk());
  EXPECT_EQ(header->code, static_cast<uint16_t>(ipc::ReplyStatus::kError));
  EXPECT_EQ(dumps_.Files(), std::vector<std::string>{});

  ToolRun dump = RunInToolNamespace(
      pod_, kNobodyNoCaps,
      {Cppdiag(), "dump", "collect", "-p", std::to_string(app.ns_pid()), "--type", "mini"});
  ASSERT_EQ(dump.exit_code, 0) << dump.ToString() << app.Output();
  EXPECT_TRUE(Inspect(WrittenPath(dump.out)).exists) << dump.out;
  ExpectServing(app);
}

TEST_F(OnDemandTest, TwentyClientsAtOnceSucceedOrAreToldToRetry) {
  NamespacedLeakapp app(pod_, dumps_.path());
  ASSERT_TRUE(app.WaitUntilReady());
  std::string socket = SocketPath(app);
  constexpr int kDumpClients = 10;
  constexpr int kInfoClients = 10;

  std::vector<std::unique_ptr<Subprocess>> dumpers;
  for (int i = 0; i < kDumpClients; ++i) {
    dumpers.push_back(StartInToolNamespace(
        pod_, kNobodyNoCaps,
        {Cppdiag(), "dump", "collect", "-p", std::to_string(app.ns_pid()), "--type", "mini", "-o",
         dumps_.path() + "/core.c" + std::to_string(i)}));
  }
  std::vector<std::string> info_errors(kInfoClients);
  std::vector<int> info_pids(kInfoClients, 0);
  std::vector<std::thread> infos;
  for (int i = 0; i < kInfoClients; ++i) {
    infos.emplace_back([&, i] {
      auto r = ipc::Call({.path = socket}, ipc::Command::kProcessInfo, nlohmann::json::object());
      if (r) {
        info_pids[i] = r->value("pid", 0);
      } else {
        info_errors[i] = r.error().message();
      }
    });
  }
  for (auto& t : infos) t.join();

  int dumped = 0;
  for (int i = 0; i < kDumpClients; ++i) {
    ToolRun run = Finish(*dumpers[i], 120s);
    std::string core = dumps_.path() + "/core.c" + std::to_string(i);
    ASSERT_TRUE(run.exit_code.has_value()) << run.ToString();
    if (*run.exit_code == 0) {
      ++dumped;
      EXPECT_EQ(WrittenPath(run.out), core);
      EXPECT_EQ(Inspect(core).mode, 0600u);
    } else {
      EXPECT_EQ(Lines(run.err), 1u) << run.err;
      EXPECT_NE(run.err.find("try again"), std::string::npos) << run.ToString();
      EXPECT_FALSE(Inspect(core).exists);
    }
  }
  EXPECT_GE(dumped, 1);
  RecordProperty("dumps_written", dumped);
  for (int i = 0; i < kInfoClients; ++i) {
    if (info_errors[i].empty()) {
      EXPECT_EQ(info_pids[i], app.ns_pid());
    } else {
      EXPECT_NE(info_errors[i].find("try again"), std::string::npos) << info_errors[i];
    }
  }
  for (const auto& name : dumps_.Files()) {
    EXPECT_EQ(name.rfind("core.c", 0), 0u) << "stray file " << name;
  }
  ExpectServing(app);
}

}  // namespace
}  // namespace cppdiag::testing
