// The diagnostic socket under load, while the service keeps serving: 8 clients
// ask for counters and dumps in a loop (CPPDIAG_LOAD_SECONDS, 60 s by
// default) against the real leakapp, which answers HTTP all along. Every
// request is answered or told "busy"; no HTTP request fails; the process's
// descriptors and threads are back to (at most) their start values afterwards.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../leakapp/leakapp_process.h"
#include "common/proc.h"
#include "diag/ipc/client.h"
#include "diag/ipc/protocol.h"
#include "support/status_matchers.h"

namespace cppdiag::testing {
namespace {

using ::cppdiag::testing::IsOk;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

size_t Entries(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

// "fd -> what it is", one per line, for a message that shows what changed.
std::string Descriptors(const std::string& dir) {
  std::string out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    out +=
        it->path().filename().string() + " -> " + fs::read_symlink(it->path(), ec).string() + "\n";
  }
  return out;
}

TEST(SocketLoad, EightClientsCountersAndDumpsWhileServingHttp) {
  int seconds = 60;
  if (const char* s = std::getenv("CPPDIAG_LOAD_SECONDS")) seconds = std::atoi(s);
  fs::path dir = fs::temp_directory_path() / ("cppdiag-load-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  LeakappProcess app({.env = {{"TMPDIR", dir.string()}, {"CPPDIAG_DUMP_DIR", dir.string()}}});
  ASSERT_TRUE(app.WaitUntilReady());
  pid_t pid = app.pid();
  auto stat = ReadProcStat(pid);
  ASSERT_THAT(stat, IsOk());
  ipc::Endpoint endpoint{.path = (dir / ipc::SocketName(pid, stat->start_time_ticks)).string(),
                         .expected_pid = pid};

  // One of each first, so that what is opened once (and kept) is counted in.
  ASSERT_THAT(ipc::Call(endpoint, ipc::Command::kCounters, nlohmann::json::object()), IsOk());
  auto first = ipc::Call(endpoint, ipc::Command::kDump,
                         {{"type", "mini"}, {"path", (dir / "warmup.core").string()}});
  ASSERT_THAT(first, IsOk());
  std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  size_t fds_before = Entries(fd_dir), threads_before = Entries(task_dir);
  std::string fds_listed = Descriptors(fd_dir);

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ok{0}, busy{0}, dumps{0}, http_ok{0};
  std::mutex mu;
  std::vector<std::string> failures;  // guarded by mu
  auto fail = [&](std::string what) {
    std::lock_guard lock(mu);
    if (failures.size() < 20) failures.push_back(std::move(what));
  };
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      std::string path = (dir / ("client-" + std::to_string(c) + ".core")).string();
      for (uint64_t i = 0; !stop.load(); ++i) {
        bool dump = i % 4 == 3;
        auto r = dump ? ipc::Call(endpoint, ipc::Command::kDump,
                                  {{"type", "mini"}, {"path", path}, {"overwrite", true}}, 60s)
                      : ipc::Call(endpoint, ipc::Command::kCounters, nlohmann::json::object());
        if (r.ok()) {
          ++ok;
          if (dump) ++dumps;
        } else if (r.error().message().find("try again") != std::string::npos) {
          ++busy;
        } else {
          fail(r.error().message());
        }
      }
    });
  }
  std::thread http([&] {
    while (!stop.load()) {
      auto r = app.Get("/healthz");
      if (r && r->status == 200) {
        ++http_ok;
      } else {
        fail("GET /healthz: " + (r ? std::to_string(r->status) : httplib::to_string(r.error())));
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(seconds));  // the load's length
  stop = true;
  for (auto& t : clients) t.join();
  http.join();

  std::printf("socket load, %d s: %llu answered (%llu dumps), %llu busy, %zu failed; %llu HTTP\n",
              seconds, static_cast<unsigned long long>(ok.load()),
              static_cast<unsigned long long>(dumps.load()),
              static_cast<unsigned long long>(busy.load()), failures.size(),
              static_cast<unsigned long long>(http_ok.load()));
  ASSERT_TRUE(app.process().running()) << app.Output();
  for (const auto& f : failures) ADD_FAILURE() << f;
  EXPECT_GT(dumps.load(), 0u);
  EXPECT_GT(http_ok.load(), 0u);
  // Workers end once their reply is sent; give the last ones a moment. Not
  // above the start values: the start may still count the readiness probe's
  // keep-alive connection (and its thread), which leakapp closes meanwhile.
  EXPECT_TRUE(PollUntil([&] { return Entries(task_dir) <= threads_before; }, 10s))
      << Entries(task_dir) << " threads, " << threads_before << " before";
  EXPECT_TRUE(PollUntil([&] { return Entries(fd_dir) <= fds_before; }, 10s))
      << "before:\n"
      << fds_listed << "after:\n"
      << Descriptors(fd_dir);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cppdiag::testing
