#include "diag/trace_request.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/async_safe.h"

namespace cppdiag {
namespace {

std::atomic<bool> g_spin{true};
std::atomic<uint64_t> g_sink{0};

void Spin() {
  while (g_spin.load(std::memory_order_relaxed)) g_sink.fetch_add(1, std::memory_order_relaxed);
}

TEST(TraceRequest, BadArgumentsGetOneLineErrors) {
  ipc::PeerInfo peer;
  for (const auto& req : {nlohmann::json{{"profile", "gpu"}}, nlohmann::json{{"profile", 3}},
                          nlohmann::json{{"rate_hz", 0}}, nlohmann::json{{"rate_hz", -5}},
                          nlohmann::json{{"rate_hz", "fast"}},
                          nlohmann::json{{"duration_ms", 0}},  // until stopped, not streamed
                          nlohmann::json{{"duration_ms", 3600000}}}) {
    auto r = RunTrace(req, peer);
    ASSERT_FALSE(r.ok()) << req.dump();
    EXPECT_EQ(r.error().code(), EINVAL) << req.dump();
    EXPECT_EQ(r.error().message().find('\n'), std::string::npos);
  }
  EXPECT_EQ(StopTrace().error().code(), ESRCH);
}

TEST(TraceRequest, AShortTraceReturnsSamplesThreadsAndMappings) {
  g_spin.store(true);
  std::atomic<pid_t> tid{0};
  std::thread t([&] {
    tid.store(CurrentTid());
    Spin();
  });
  while (tid.load() == 0) std::this_thread::yield();
  auto r = RunTrace({{"profile", "cpu"}, {"rate_hz", 200}, {"duration_ms", 300}}, {});
  g_spin.store(false);
  t.join();
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->at("profile"), "cpu");
  EXPECT_EQ(r->at("period_ns"), 5000000);
  EXPECT_EQ(r->at("ended_by"), "duration");
  size_t mine = 0;
  for (const auto& s : r->at("samples")) {
    if (s.at("tid") == tid.load()) ++mine;
    EXPECT_FALSE(s.at("pcs").empty());
  }
  EXPECT_GT(mine, 0u);
  bool listed = false;
  for (const auto& th : r->at("threads")) listed |= th.at("tid") == tid.load();
  EXPECT_TRUE(listed);
  EXPECT_FALSE(r->at("mappings").empty());
  EXPECT_FALSE(r->at("counters").empty());
}

TEST(TraceRequest, StreamsProgressAndStopsOnRequest) {
  std::atomic<int> frames{0};
  ipc::PeerInfo peer;
  peer.progress = [&](const nlohmann::json&) { frames.fetch_add(1); };
  peer.gone = [] { return false; };
  Result<nlohmann::json> r = Error(EIO, "", "not run");
  std::atomic<bool> ended{false};
  std::thread tracer([&] {
    r = RunTrace({{"profile", "wall"}, {"duration_ms", 0}}, peer);
    ended.store(true);
  });
  // The first frame comes at the start, the next after a drain.
  while (frames.load() < 2 && !ended.load()) std::this_thread::yield();
  ASSERT_FALSE(ended.load()) << (r.ok() ? r->dump() : r.error().message());
  // A second trace meanwhile is refused.
  EXPECT_EQ(RunTrace({{"duration_ms", 10}}, {}).error().code(), EBUSY);
  ASSERT_TRUE(StopTrace().ok());
  tracer.join();
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->at("ended_by"), "request");
  EXPECT_EQ(StopTrace().error().code(), ESRCH);
}

TEST(TraceRequest, EndsWhenTheClientIsGone) {
  ipc::PeerInfo peer;
  std::atomic<int> frames{0};
  peer.progress = [&](const nlohmann::json&) { frames.fetch_add(1); };
  peer.gone = [&] { return frames.load() >= 3; };
  auto r = RunTrace({{"duration_ms", 0}}, peer);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->at("ended_by"), "client");
}

}  // namespace
}  // namespace cppdiag
