// Fork-mode self-dumps end to end: fork_dump_target dumps itself with the
// threads stopped only for the register capture and the copy-on-write clone;
// gdb reads the result, the notes carry the target's own pid and tids, the
// memory is the snapshot's, and the target's heartbeat beats while the child
// writes (how long it really stops is bench/dump/pause_bench's measure).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/io.h"
#include "common/proc.h"
#include "diag/dump/testing/core_file_reader.h"
#include "diag/ipc/client.h"
#include "marker.h"
#include "support/scoped_cgroup.h"
#include "support/scoped_temp_dir.h"
#include "support/status_matchers.h"
#include "support/subprocess.h"

namespace cppdiag::dump {
namespace {

using ::cppdiag::testing::IsOk;

using ::cppdiag::testing::ScopedTempDir;

using cppdiag::dump_test::Marker;

using cppdiag::testing::BuiltBinary;
using cppdiag::testing::Subprocess;
using cppdiag::testing::SubprocessOptions;
using std::chrono::seconds;
namespace fs = std::filesystem;

std::string Target() { return BuiltBinary("fork_dump_target"); }

// "key=value" fields of the line starting with `prefix`.
std::map<std::string, std::string> Fields(const std::string& out, const std::string& prefix) {
  std::map<std::string, std::string> f;
  size_t a = out.find(prefix);
  if (a == std::string::npos) return f;
  std::string line = out.substr(a, out.find('\n', a) - a);
  static const std::regex kField(R"((\w+)=(\[[^\]]*\]|\S*))");
  for (std::sregex_iterator it(line.begin(), line.end(), kField), end; it != end; ++it) {
    f[(*it)[1]] = (*it)[2];
  }
  return f;
}

uint64_t Num(const std::map<std::string, std::string>& f, const std::string& k) {
  auto it = f.find(k);
  return it == f.end() || it->second.empty() ? 0 : std::stoull(it->second);
}

std::string Gdb(const std::string& core) { return cppdiag::testing::GdbBatch(Target(), core); }

int GdbThreadCount(const std::string& gdb) {
  static const std::regex kRow(R"(^\*?\s+\d+\s+(Thread 0x[0-9a-f]+ )?\(?LWP \d+)");
  int n = 0;
  std::istringstream in(gdb);
  for (std::string line; std::getline(in, line);) n += std::regex_search(line, kRow);
  return n;
}

bool FileContains(const std::string& path, const std::string& needle) {
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return data.find(needle) != std::string::npos;
}

struct TargetRun {
  std::map<std::string, std::string> ready, dump;
  std::string out, err;
  std::optional<int> exit_code;
  bool alive = false;
};

class ForkDumpTest : public ::testing::Test {
 protected:
  TargetRun RunTarget(std::vector<std::string> args, const std::string& cgroup_procs = "") {
    SubprocessOptions o;
    o.argv = {Target()};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.cgroup_procs = cgroup_procs;
    Subprocess p(o);
    auto end = p.Wait(seconds(180));
    TargetRun r;
    EXPECT_TRUE(end.has_value()) << "timed out";
    if (end) r.exit_code = end->exit_code;
    r.out = p.Stdout();
    r.err = p.Stderr();
    r.ready = Fields(r.out, "READY");
    r.dump = Fields(r.out, "DUMP");
    r.alive = r.out.find("ALIVE") != std::string::npos;
    return r;
  }

  ScopedTempDir tmp_{"cppdiag-fork-dump-test"};
  std::string dir_ = tmp_.path();
};

TEST_F(ForkDumpTest, GdbReadsEveryThreadAndTheMemoryIsTheSnapshots) {
  const std::string core = dir_ + "/core";
  TargetRun r = RunTarget(
      {"--mode", "fork", "--path", core, "--heap-mb", "96", "--threads", "3", "--seed", "7"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(r.alive) << r.out;
  EXPECT_EQ(r.dump["mode"], "fork");
  EXPECT_EQ(r.dump["reason"], "[requested]");
  EXPECT_EQ(r.dump["after_written"], "1") << "no progress call while the child wrote: " << r.out;

  // Threads: the same tids as the live process, the target's pid.
  std::set<pid_t> tids;
  std::stringstream ts(r.ready["tids"]);
  for (std::string t; std::getline(ts, t, ',');) tids.insert(std::stoi(t));
  ASSERT_EQ(tids.size(), 5u) << r.out;  // main, 3 workers, heartbeat
  auto parsed = testing::ParseCoreFile(core);
  ASSERT_THAT(parsed, IsOk());
  std::set<pid_t> in_core;
  for (const auto* note : parsed->NotesOfType("CORE", NT_PRSTATUS)) {
    elf_prstatus pr;
    std::memcpy(&pr, note->desc.data(), sizeof pr);
    in_core.insert(pr.pr_pid);
  }
  EXPECT_EQ(in_core, tids);
  auto ps = parsed->NotesOfType("CORE", NT_PRPSINFO);
  ASSERT_EQ(ps.size(), 1u);
  elf_prpsinfo info;
  std::memcpy(&info, ps[0]->desc.data(), sizeof info);
  EXPECT_EQ(std::to_string(info.pr_pid), r.ready["pid"]);
  EXPECT_EQ(Num(r.dump, "last_total"), fs::file_size(core)) << "progress total is the file size";

  // Marker A was written before the snapshot; B and C (over A) after it.
  EXPECT_TRUE(FileContains(core, Marker(7)));
  EXPECT_FALSE(FileContains(core, Marker(8)));
  EXPECT_FALSE(FileContains(core, Marker(9)));

  std::string gdb = Gdb(core);
  EXPECT_EQ(GdbThreadCount(gdb), 5) << gdb;
  EXPECT_NE(gdb.find("RequestForkDump"), std::string::npos) << gdb;
  EXPECT_NE(gdb.find("HeartbeatMain"), std::string::npos) << gdb;
  size_t parked = 0;
  for (size_t p = gdb.find("ParkWorkerInRead"); p != std::string::npos;
       p = gdb.find("ParkWorkerInRead", p + 1)) {
    ++parked;
  }
  EXPECT_GE(parked, 3u) << gdb;
}

TEST_F(ForkDumpTest, TheTargetRunsOnWhileTheChildWrites) {
  const std::string core = dir_ + "/core";
  TargetRun r = RunTarget({"--mode", "fork", "--path", core, "--heap-mb", "256", "--threads", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.dump["mode"], "fork") << r.out;
  // The pause the dump reports is a small part of it (two figures the product
  // reports on one run, not a timing of this machine).
  uint64_t pause = Num(r.dump, "pause_us"), duration = Num(r.dump, "duration_us");
  EXPECT_LT(pause * 5, duration) << r.out;
  // The heartbeat beat while the child wrote: the target waited for three
  // beats inside the first progress call (a condition, not a rate; how long
  // the heartbeat really stops is pause_bench's measure, bench/dump).
  EXPECT_EQ(r.dump["beat_in_write"], "1") << r.out;
  EXPECT_GE(Num(r.dump, "beats"), 3u) << r.out;
  EXPECT_GT(Num(r.dump, "progress_calls"), 1u) << r.out;
}

TEST_F(ForkDumpTest, SuspendModeStopsTheThreadsForTheWholeWrite) {
  const std::string core = dir_ + "/core";
  TargetRun r = RunTarget({"--mode", "suspend", "--path", core, "--heap-mb", "64"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.dump["mode"], "suspended");
  uint64_t pause = Num(r.dump, "pause_us"), duration = Num(r.dump, "duration_us");
  EXPECT_GE(pause * 2, duration) << r.out;                      // most of it
  EXPECT_GE(Num(r.dump, "max_gap_us") + 2000, pause) << r.out;  // the heartbeat saw it
  EXPECT_EQ(r.dump["after_written"], "0");                      // no progress calls without a child
  EXPECT_TRUE(FileContains(core, Marker(1)));
}

TEST_F(ForkDumpTest, AutoSuspendsInACgroupWithLittleHeadroomAndForksWithPlenty) {
  {
    // 160 MiB of heap under a 224 MiB limit: less than RssAnon/2 = 80 MiB free.
    cppdiag::testing::ScopedCgroup cg(224u << 20);
    if (!cg.ok()) GTEST_SKIP() << cg.why_not();
    TargetRun r = RunTarget(
        {"--mode", "auto", "--path", dir_ + "/tight", "--heap-mb", "160", "--type", "heap"},
        cg.procs_file());
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(r.dump["mode"], "suspended") << r.out;
    EXPECT_NE(r.dump["reason"].find(" < "), std::string::npos) << r.out;
    EXPECT_EQ(cg.oom_kills(), 0u);
  }
  {
    cppdiag::testing::ScopedCgroup cg(1024u << 20);
    ASSERT_TRUE(cg.ok());
    TargetRun r = RunTarget(
        {"--mode", "auto", "--path", dir_ + "/roomy", "--heap-mb", "160", "--type", "heap"},
        cg.procs_file());
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(r.dump["mode"], "fork") << r.out;
    EXPECT_NE(r.dump["reason"].find(" >= "), std::string::npos) << r.out;
  }
}

// The fork-mode child shares the parent's pages while it reads them: a full
// dump of a 256 MiB heap grows the cgroup by far less than the heap. (Read
// with process_vm_readv, which pins the pages and so makes the kernel unshare
// each copy-on-write page it reads, the child copied the whole heap: +256 MiB,
// twice what the headroom rule of ChooseForkForHeadroom allows for.)
TEST_F(ForkDumpTest, TheForkChildDoesNotCopyTheHeapItReads) {
  constexpr uint64_t kHeapMb = 256;
  cppdiag::testing::ScopedCgroup cg(0);
  if (!cg.ok()) GTEST_SKIP() << cg.why_not();
  const bool v1 = cg.version() == 1;
  const std::string peak_file = cg.dir() + (v1 ? "/memory.max_usage_in_bytes" : "/memory.peak");
  const std::string usage_file = cg.dir() + (v1 ? "/memory.usage_in_bytes" : "/memory.current");
  const std::string fifo = dir_ + "/go", core = dir_ + "/core";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  SubprocessOptions o;
  o.argv = {Target(), "--mode", "fork",      "--path", core, "--heap-mb", std::to_string(kHeapMb),
            "--type", "full",   "--go-fifo", fifo};
  o.cgroup_procs = cg.procs_file();
  Subprocess p(o);
  ASSERT_TRUE(p.WaitForOutput("READY", seconds(60))) << p.Stderr();
  // v2 resets the peak seen through the descriptor written (kernel 6.12 on):
  // it is read back through the same one.
  int peak_fd = ::open(peak_file.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(peak_fd, 0) << peak_file;
  const char* reset = v1 ? "0\n" : "reset\n";
  if (::write(peak_fd, reset, std::strlen(reset)) < 0) {
    ::close(peak_fd);
    GTEST_SKIP() << "cannot reset " << peak_file << ": " << std::strerror(errno);
  }
  auto before = ReadFileToString(usage_file);
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(WriteStringToFile(fifo, "g").ok());  // go
  auto end = p.Wait(seconds(180));
  char buf[32] = {};
  ssize_t n = ::pread(peak_fd, buf, sizeof buf - 1, 0);
  ::close(peak_fd);
  ASSERT_TRUE(end.has_value());
  ASSERT_EQ(end->exit_code, 0) << p.Stdout() << p.Stderr();
  std::map<std::string, std::string> dump = Fields(p.Stdout(), "DUMP");
  EXPECT_EQ(dump["mode"], "fork") << p.Stdout();
  ASSERT_GT(n, 0) << peak_file;
  uint64_t peak = std::stoull(std::string(buf, static_cast<size_t>(n)));
  uint64_t growth = peak - std::min<uint64_t>(peak, std::stoull(*before));
  EXPECT_GT(fs::file_size(core), kHeapMb << 20);  // the heap was read
  EXPECT_LT(growth, (kHeapMb << 20) / 4)
      << "the dump of a " << kHeapMb << " MiB heap grew the cgroup by " << (growth >> 20)
      << " MiB (peak " << peak << ", before " << *before << ")";
  std::printf("cgroup growth over the dump: %llu MiB\n",
              static_cast<unsigned long long>(growth >> 20));
  EXPECT_EQ(cg.oom_kills(), 0u);
}

TEST_F(ForkDumpTest, AFullFilesystemGivesEnospcLeavesNoFileAndTheTargetRunsOn) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  const std::string small = dir_ + "/small";
  ASSERT_EQ(::mkdir(small.c_str(), 0755), 0);
  if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
  }
  TargetRun r = RunTarget({"--mode", "fork", "--path", small + "/core", "--heap-mb", "16"});
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(small)) left.push_back(e.path().filename());
  ::umount2(small.c_str(), MNT_DETACH);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.dump["rc"], std::to_string(ENOSPC)) << r.out;
  EXPECT_EQ(r.dump["mode"], "fork");
  EXPECT_TRUE(r.alive) << r.out;
  EXPECT_TRUE(left.empty()) << left.front();
}

TEST_F(ForkDumpTest, AKilledWriterIsAnErrorWithItsSignalAndLeavesNoFile) {
  TargetRun r = RunTarget(
      {"--mode", "fork", "--path", dir_ + "/core", "--heap-mb", "128", "--kill-writer", "1"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.dump["rc"], std::to_string(EIO)) << r.out;
  EXPECT_EQ(r.dump["writer_signal"], std::to_string(SIGKILL)) << r.out;
  EXPECT_TRUE(r.alive) << r.out;
  EXPECT_TRUE(fs::is_empty(dir_)) << r.out;
}

TEST_F(ForkDumpTest, AFailedCloneFallsBackToSuspendedAndSaysSo) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the target as another user";
  ::chmod(dir_.c_str(), 0777);
  const std::string core = dir_ + "/core";
  // As nobody, with RLIMIT_NPROC below its task count: clone gives EAGAIN.
  SubprocessOptions o;
  o.argv = {
      "/usr/bin/setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      cppdiag::testing::StagedBinary("fork_dump_target"),  // nobody may not enter the build tree
      "--mode",
      "fork",
      "--path",
      core,
      "--heap-mb",
      "16",
      "--nproc-limit",
      "1"};
  Subprocess p(o);
  auto end = p.Wait(seconds(120));
  ASSERT_TRUE(end.has_value());
  auto dump = Fields(p.Stdout(), "DUMP");
  ASSERT_EQ(end->exit_code, 0) << p.Stdout() << p.Stderr();
  EXPECT_EQ(dump["mode"], "suspended") << p.Stdout();
  EXPECT_EQ(dump["reason"], "[clone failed (EAGAIN): wrote with threads suspended]") << p.Stdout();
  EXPECT_TRUE(FileContains(core, Marker(1)));
}

// Over the diagnostic socket, as `cppdiag dump collect` asks: leakapp with
// 800 MiB leaked dumps in fork mode and streams progress frames first.
TEST_F(ForkDumpTest, TheSocketStreamsProgressFramesBeforeTheReplyOfALargeDump) {
  SubprocessOptions o;
  o.argv = {BuiltBinary("leakapp"), "--port", "0", "--bind", "127.0.0.1"};
  o.env = {{"TMPDIR", dir_}, {"CPPDIAG_DUMP_DIR", dir_}, {"CPPDIAG_ENABLE_DIAGNOSTICS", "1"}};
  Subprocess app(o);
  std::optional<int> port = cppdiag::testing::WaitForListeningPort(app, seconds(30));
  ASSERT_TRUE(port.has_value()) << app.Stdout() << app.Stderr();
  std::string url = "http://127.0.0.1:" + std::to_string(*port) +
                    "/triggerMemoryLeak?chunkKb=4096&intervalMs=1&maxMb=800";
  Subprocess curl(SubprocessOptions{{"/usr/bin/curl", "-sf", url}});
  ASSERT_TRUE(curl.Wait(seconds(30)).has_value());
  ASSERT_TRUE(app.WaitForOutput("Total: 800.00 MB", seconds(60))) << app.Stdout();

  auto stat = ReadProcStat(app.pid());
  ASSERT_THAT(stat, IsOk());
  ipc::Endpoint endpoint{dir_ + "/" + ipc::SocketName(app.pid(), stat->start_time_ticks), ""};
  std::vector<nlohmann::json> frames;
  auto reply = ipc::Call(endpoint, ipc::Command::kDump, {{"type", "full"}}, std::chrono::minutes(5),
                         [&](const nlohmann::json& f) { frames.push_back(f); });
  ASSERT_THAT(reply, IsOk()) << app.Stdout() << app.Stderr();
  EXPECT_EQ((*reply)["mode"], "fork") << reply->dump();
  EXPECT_LT((*reply)["pause_ms"].get<double>(), (*reply)["duration_ms"].get<double>());
  uint64_t bytes = (*reply)["bytes"].get<uint64_t>();
  EXPECT_GT(bytes, 800u << 20);
  ASSERT_GE(frames.size(), 2u) << reply->dump();
  EXPECT_EQ(frames[0]["path"], (*reply)["path"]);  // says where before it writes
  EXPECT_EQ(frames[0]["type"], "full");
  uint64_t last = 0;
  for (const auto& f : frames) {
    uint64_t written = f["bytes_written"].get<uint64_t>();
    uint64_t total = f["bytes_total"].get<uint64_t>();
    EXPECT_GE(written, last);
    if (total != 0) {
      EXPECT_EQ(total, bytes);
    }
    last = written;
  }
  EXPECT_TRUE(fs::exists((*reply)["path"].get<std::string>()));
  EXPECT_TRUE(app.running());  // the target served the dump and runs on
}

}  // namespace
}  // namespace cppdiag::dump
