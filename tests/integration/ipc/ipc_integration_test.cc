// The diagnostic server inside a real target (tests/integration/ipc/
// ipc_target.cc, the real runtime and handlers), asked by real peers: other
// uids, other user namespaces, a non-dumpable target, a target whose heap is
// at its hard limit or whose pids cgroup is full, hostile argv and paths.
// Needs root (uids, namespaces, cgroups); skips without it.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/io.h"
#include "common/proc.h"
#include "common/scoped_fd.h"
#include "diag/ipc/protocol.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"
#include "support/subprocess.h"

namespace cppdiag::testing {
namespace {

using ::cppdiag::testing::IsOk;

namespace fs = std::filesystem;
using ipc::Command;

// A directory any uid may write in (the targets drop root).
class OpenDir : public ScopedTempDir {
 public:
  OpenDir() : ScopedTempDir("cppdiag-ipc-it") { ::chmod(path().c_str(), 01777); }
};

// ipc_target with `args`, its sockets and dumps in `dir`.
class Target {
 public:
  Target(const OpenDir& dir, std::vector<std::string> args,
         std::map<std::string, std::string> env = {}, std::string cgroup_procs = "") {
    args.insert(args.begin(), IPC_TARGET);
    env["TMPDIR"] = dir.path();
    env["CPPDIAG_DUMP_NAME"] = dir.path() + "/core.%p";
    process_ = std::make_unique<Subprocess>(SubprocessOptions{
        .argv = std::move(args), .env = std::move(env), .cgroup_procs = std::move(cgroup_procs)});
  }
  ::testing::AssertionResult WaitUntilReady() {
    if (!process_->WaitForOutput("ready", std::chrono::seconds(20))) {
      return ::testing::AssertionFailure() << "not ready: " << Output();
    }
    if (!process_->running()) return ::testing::AssertionFailure() << "ended: " << Output();
    return ::testing::AssertionSuccess();
  }
  std::string abstract_name() const {
    auto stat = ReadProcStat(process_->pid());
    return ipc::SocketName(process_->pid(), stat ? stat->start_time_ticks : 0);
  }
  pid_t pid() const { return process_->pid(); }
  bool running() { return process_->running(); }
  std::string Output() const { return process_->Stdout() + process_->Stderr(); }

 private:
  std::unique_ptr<Subprocess> process_;
};

// Who asks: a forked child of this test that becomes `uid` (0: stays root),
// after joining the user namespace `join_userns_fd` or before making one of
// its own (`own_userns`).
struct Peer {
  uid_t uid = 0;
  int join_userns_fd = -1;
  bool own_userns = false;
};

struct Reply {
  std::string failure;  // empty when a reply frame came back
  uint16_t status = 0;
  nlohmann::json body;
  std::string code() const { return body.is_object() ? body.value("code", "") : ""; }
  std::string error() const { return body.is_object() ? body.value("error", "") : ""; }
  std::string ToString() const {
    return failure.empty() ? "status " + std::to_string(status) + " " + body.dump() : failure;
  }
};

Reply ParseReply(const std::string& bytes) {
  Reply r;
  if (bytes.rfind("!", 0) == 0) return {"peer failed: " + bytes.substr(1)};
  auto h = ipc::DecodeHeader(bytes, ipc::kMaxReplyPayload);
  if (!h) return {"no reply frame (" + std::to_string(bytes.size()) + " bytes)"};
  if (bytes.size() < ipc::kHeaderSize + h->payload_size) return {"short reply"};
  r.status = h->code;
  r.body = nlohmann::json::parse(bytes.substr(ipc::kHeaderSize, h->payload_size), nullptr, false);
  if (r.body.is_discarded()) r.failure = "reply is not JSON";
  return r;
}

// Sends `payload` as a `command` request to the abstract socket `name` from
// `peer`, and returns the reply. The child makes only system calls.
Reply Ask(const Peer& peer, const std::string& name, Command command, const std::string& payload) {
  std::string frame = ipc::EncodeFrame(static_cast<uint16_t>(command), payload);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return {"pipe"};
  pid_t child = ::fork();
  if (child == 0) {
    auto fail = [&](const char* what) {
      (void)!::write(out[1], what, std::strlen(what));
      _exit(1);
    };
    if (peer.join_userns_fd >= 0 && ::setns(peer.join_userns_fd, CLONE_NEWUSER) != 0) {
      fail("!setns");
    }
    if (peer.uid != 0) {
      ::setgroups(0, nullptr);
      if (::setresgid(peer.uid, peer.uid, peer.uid) != 0) fail("!setresgid");
      if (::setresuid(peer.uid, peer.uid, peer.uid) != 0) fail("!setresuid");
    }
    ::prctl(PR_SET_DUMPABLE, 1);  // as a freshly exec'd tool is after the uid change
    if (peer.own_userns && ::unshare(CLONE_NEWUSER) != 0) fail("!unshare");
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) fail("!connect");
    (void)SendAllRaw(fd, frame.data(), frame.size());
    char buf[65536];
    for (;;) {
      ssize_t n = HANDLE_EINTR(::read(fd, buf, sizeof buf));
      if (n <= 0) break;
      if (WriteAllRaw(out[1], buf, static_cast<size_t>(n)) != 0) break;
    }
    _exit(0);
  }
  ::close(out[1]);
  std::string bytes;
  char buf[65536];
  for (;;) {
    ssize_t n = HANDLE_EINTR(::read(out[0], buf, sizeof buf));
    if (n <= 0) break;
    bytes.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  return ParseReply(bytes);
}

Reply Ask(const Peer& peer, Target& target, Command command, const std::string& payload = "{}") {
  return Ask(peer, target.abstract_name(), command, payload);
}

class IpcIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (other uids, namespaces, cgroups)";
  }
  OpenDir dir_;
};

constexpr uint16_t kOk = static_cast<uint16_t>(ipc::ReplyStatus::kOk);
constexpr uint16_t kError = static_cast<uint16_t>(ipc::ReplyStatus::kError);

// ---- Peers from other user namespaces (issue item 5)

// The target is uid 65534 of a user namespace that maps only its own host
// uid: every host process, this root test included, shows there as the
// overflow uid 65534, which is the target's own uid.
TEST_F(IpcIntegrationTest, AnUnmappedPeerShowingAsTheOverflowUidIsRefused) {
  Target target(dir_, {"--own-userns"});
  ASSERT_TRUE(target.WaitUntilReady());
  Reply r = Ask(Peer{}, target, Command::kProcessInfo);
  EXPECT_EQ(r.status, kError) << r.ToString();
  EXPECT_EQ(r.code(), "EACCES") << r.ToString();
  EXPECT_NE(r.error().find("user namespace"), std::string::npos) << r.ToString();
  EXPECT_TRUE(target.running());
}

TEST_F(IpcIntegrationTest, APeerOfTheTargetsOwnUserNamespaceAndUidIsServed) {
  Target target(dir_, {"--own-userns"});
  ASSERT_TRUE(target.WaitUntilReady());
  ScopedFd userns(
      ::open(("/proc/" + std::to_string(target.pid()) + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(userns.is_valid());
  Reply r = Ask(Peer{.uid = 65534, .join_userns_fd = userns.get()}, target, Command::kProcessInfo);
  EXPECT_EQ(r.status, kOk) << r.ToString();
  EXPECT_EQ(r.body.value("pid", 0), target.pid()) << r.ToString();
}

// A target running as 65534 in this namespace, and a peer of uid 65534 that
// made a user namespace of its own: from there it cannot be told from an
// unmapped peer, so it is refused; the same peer without the namespace is served.
TEST_F(IpcIntegrationTest, AnOverflowUidPeerFromAnotherUserNamespaceIsRefused) {
  Target target(dir_, {"--uid", "65534"});
  ASSERT_TRUE(target.WaitUntilReady());
  Reply foreign = Ask(Peer{.uid = 65534, .own_userns = true}, target, Command::kProcessInfo);
  EXPECT_EQ(foreign.code(), "EACCES") << foreign.ToString();
  Reply local = Ask(Peer{.uid = 65534}, target, Command::kProcessInfo);
  EXPECT_EQ(local.status, kOk) << local.ToString();
  Reply root = Ask(Peer{}, target, Command::kProcessInfo);
  EXPECT_EQ(root.status, kOk) << root.ToString();
}

// ---- Non-dumpable targets (issue item 4)

class NonDumpable : public IpcIntegrationTest,
                    public ::testing::WithParamInterface<std::vector<std::string>> {};

TEST_P(NonDumpable, ItsMemoryIsServedToRootOnly) {
  Target target(dir_, GetParam());
  ASSERT_TRUE(target.WaitUntilReady());
  Peer same_uid{.uid = 65533};
  std::string dump = R"({"type":"triage","path":")" + dir_.path() + R"(/core.nondumpable"})";
  for (Command c : {Command::kHeapSnapshot, Command::kDump}) {
    Reply r = Ask(same_uid, target, c, c == Command::kDump ? dump : "{}");
    EXPECT_EQ(r.code(), "EPERM") << ipc::CommandName(static_cast<uint16_t>(c)) << ": "
                                 << r.ToString();
    EXPECT_NE(r.error().find("not dumpable"), std::string::npos) << r.ToString();
  }
  EXPECT_FALSE(fs::exists(dir_.path() + "/core.nondumpable"));
  // What is not memory is still served to the same uid; memory to root.
  EXPECT_EQ(Ask(same_uid, target, Command::kProcessInfo).status, kOk);
  EXPECT_EQ(Ask(same_uid, target, Command::kCounters).status, kOk);
  Reply root = Ask(Peer{}, target, Command::kHeapSnapshot);
  EXPECT_EQ(root.status, kOk) << root.ToString();
}

INSTANTIATE_TEST_SUITE_P(
    PrSetDumpableOrCredentialChange, NonDumpable,
    ::testing::Values(std::vector<std::string>{"--uid", "65533", "--not-dumpable"},
                      std::vector<std::string>{"--setuid-after-start", "65533"}));

// ---- Exhaustion (issue item 6)

TEST_F(IpcIntegrationTest, AtTheHeapHardLimitRequestsAreStillAnswered) {
  Target target(dir_, {"--fill-heap"}, {{"CPPDIAG_HEAP_HARD_LIMIT", "64M"}});
  ASSERT_TRUE(target.WaitUntilReady());
  ASSERT_NE(target.Output().find("heap full"), std::string::npos) << target.Output();
  for (Command c : {Command::kProcessInfo, Command::kCounters, Command::kHeapSnapshot}) {
    Reply r = Ask(Peer{}, target, c);
    EXPECT_EQ(r.status, kOk) << ipc::CommandName(static_cast<uint16_t>(c)) << ": " << r.ToString();
  }
  // 64 KiB of nesting: refused before the parser allocates anything.
  Reply nested = Ask(Peer{}, target, Command::kProcessInfo, std::string(60000, '['));
  EXPECT_NE(nested.error().find("nesting too deep"), std::string::npos) << nested.ToString();
  EXPECT_TRUE(target.running()) << target.Output();
  EXPECT_EQ(Ask(Peer{}, target, Command::kProcessInfo).status, kOk);
}

// A pids cgroup (v1 or v2) with pids.max, removed on destruction.
class ScopedPidsCgroup {
 public:
  ScopedPidsCgroup() {
    std::ifstream cgroups("/proc/self/cgroup");
    std::string mine;
    for (std::string line; std::getline(cgroups, line);) {
      auto first = line.find(':'), second = line.find(':', first + 1);
      std::string controllers = line.substr(first + 1, second - first - 1);
      std::string path = line.substr(second + 1);
      if (controllers == "pids" && fs::exists("/sys/fs/cgroup/pids" + path)) {
        mine = "/sys/fs/cgroup/pids" + path;
      } else if (controllers.empty() && mine.empty()) {
        std::ifstream sub("/sys/fs/cgroup" + path + "/cgroup.subtree_control");
        std::string enabled((std::istreambuf_iterator<char>(sub)), {});
        if (enabled.find("pids") != std::string::npos) mine = "/sys/fs/cgroup" + path;
      }
    }
    if (mine.empty()) return;
    std::string dir = mine + "/cppdiag-ipc-test-" + std::to_string(::getpid());
    if (::mkdir(dir.c_str(), 0755) == 0) dir_ = dir;
  }
  ~ScopedPidsCgroup() {
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }
  bool ok() const { return !dir_.empty(); }
  std::string procs() const { return dir_ + "/cgroup.procs"; }
  std::string Read(const char* file) const { return ReadAll(dir_ + "/" + file); }
  bool SetMax(const std::string& max) const {
    return WriteStringToFile(dir_ + "/pids.max", max).ok();
  }

 private:
  std::string dir_;
};

TEST_F(IpcIntegrationTest, AWorkerThreadThatCannotStartGetsBusyAndTheServerServesOn) {
  ScopedPidsCgroup pids;
  if (!pids.ok()) GTEST_SKIP() << "no pids cgroup controller to use";
  {
    Target target(dir_, {}, {}, pids.procs());
    ASSERT_TRUE(target.WaitUntilReady());
    ASSERT_TRUE(pids.SetMax(std::to_string(std::stoi(pids.Read("pids.current")))));
    Reply busy = Ask(Peer{}, target, Command::kProcessInfo);
    EXPECT_EQ(busy.code(), "EBUSY") << busy.ToString();
    EXPECT_TRUE(target.running()) << target.Output();
    ASSERT_TRUE(pids.SetMax("max"));
    EXPECT_EQ(Ask(Peer{}, target, Command::kProcessInfo).status, kOk);
  }
}

// ---- Hostile strings (issue item 13)

TEST_F(IpcIntegrationTest, AnArgvAndAMappingPathThatAreNotUtf8AreReplacedNotFatal) {
  std::string lib = dir_.path() + "/lib\xff.so";
  ASSERT_THAT(WriteStringToFile(lib, std::string(4096, '\0')), IsOk());
  Target target(dir_, {"--map-file", lib, "arg-\xff"});
  ASSERT_TRUE(target.WaitUntilReady());
  Reply info = Ask(Peer{}, target, Command::kProcessInfo);
  ASSERT_EQ(info.status, kOk) << info.ToString();
  EXPECT_EQ(info.body["cmdline"].back(), "arg-\xEF\xBF\xBD") << info.ToString();
  Reply heap = Ask(Peer{}, target, Command::kHeapSnapshot);
  ASSERT_EQ(heap.status, kOk) << heap.ToString();
  bool seen = false;
  for (const auto& m : heap.body["mappings"]) {
    seen |= m.value("path", "") == dir_.path() + "/lib\xEF\xBF\xBD.so";
  }
  EXPECT_TRUE(seen) << heap.body["mappings"].dump();
}

}  // namespace
}  // namespace cppdiag::testing
