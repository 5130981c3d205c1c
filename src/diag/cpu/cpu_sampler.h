// In-process CPU and wall-clock sampling: what `cppdiag trace collect` asks
// the target for over its diagnostic socket.
//
// Each thread of the process gets a POSIX timer of its own that sends it
// SIGPROF (SIGEV_THREAD_ID): on the thread's CPU-time clock for kCpu (so
// samples fall where a thread spends CPU, and a blocked thread gets none),
// on CLOCK_MONOTONIC for kWall (every thread, running or not, so blocking
// shows). The handler (signal_handler.cc, async-signal-safe) records the
// time and a frame-pointer stack into the thread's lock-free ring
// (internal/sample_ring.h); the caller drains the rings from normal context.
//
// Threads started during a trace are found by Rescan() (a read of
// /proc/self/task; call it every ~50-100 ms: a thread that lives less than
// that may go unsampled); ended ones lose their timer there too. Threads
// that block SIGPROF (the runtime's own, ScopedBlockAsyncSignals) are not
// sampled. Samples are raw pcs; symbols are resolved out of process.
//
// Wall mode interrupts blocked threads: the handler is SA_RESTART, so
// read(), write(), waits on futexes and the like resume, but calls the
// kernel never restarts (nanosleep, poll, epoll_wait, select) return EINTR
// to a program that may not expect it, as under perf's or gperftools'
// signal-based profilers.
//
// One sampler at a time per process (EBUSY otherwise).
//
//   auto s = CpuSampler::Start({.kind = ProfileKind::kCpu, .rate_hz = 99});
//   std::vector<CpuSample> out;
//   while (tracing) { (*s)->Rescan(); (*s)->Drain(&out); wait 50 ms; }
//   (*s)->Stop(&out);
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace cppdiag::cpu {

enum class ProfileKind { kCpu, kWall };
const char* ProfileKindName(ProfileKind kind);  // "cpu", "wall"
Result<ProfileKind> ParseProfileKind(const std::string& name);

struct SamplerOptions {
  ProfileKind kind = ProfileKind::kCpu;
  uint32_t rate_hz = 99;  // 1..10000
  // Threads never sampled (the caller's drain thread, say).
  std::set<pid_t> exclude_tids;
};

struct CpuSample {
  pid_t tid = 0;
  uint64_t time_ns = 0;       // CLOCK_MONOTONIC
  uint32_t weight = 1;        // periods it stands for (timer overruns add to it)
  std::vector<uint64_t> pcs;  // pcs[0] the interrupted pc, then return addresses
};

struct SampledThread {
  pid_t tid = 0;
  std::string name;      // /proc/self/task/<tid>/comm when it was last seen
  bool sampled = false;  // a timer was armed for it
  std::string why_not;   // when !sampled: "blocks SIGPROF", "no free slot", ...
};

class CpuSampler {
 public:
  static constexpr size_t kMaxThreads = 512;

  // Installs the handler (once per process), arms a timer for every thread
  // now running. EBUSY when a sampler runs already or SIGPROF has a handler
  // of the program's; EINVAL for a rate out of range.
  static Result<std::unique_ptr<CpuSampler>> Start(SamplerOptions options);
  ~CpuSampler();  // Stop() if not stopped (the samples left are dropped)
  CpuSampler(const CpuSampler&) = delete;
  CpuSampler& operator=(const CpuSampler&) = delete;

  // Arms timers for threads started since the last call, and retires those
  // that ended (their last samples are kept for the next Drain).
  void Rescan();
  // Appends the samples recorded since the last Drain to `out`.
  void Drain(std::vector<CpuSample>* out);
  // Deletes every timer and appends the last samples. Idempotent.
  void Stop(std::vector<CpuSample>* out);

  ProfileKind kind() const { return options_.kind; }
  uint64_t period_ns() const { return 1000000000ull / options_.rate_hz; }
  uint64_t start_ns() const { return start_ns_; }
  // Samples lost because a thread's ring was full.
  uint64_t lost_samples() const { return lost_; }
  // Every thread seen since Start, by tid (names refreshed by Rescan).
  const std::map<pid_t, SampledThread>& threads() const { return threads_; }

 private:
  struct Armed {
    size_t slot;
    int timer_id;
  };
  explicit CpuSampler(SamplerOptions options) : options_(std::move(options)) {}
  bool Arm(pid_t tid, size_t slot, int* timer_id, std::string* why_not) const;
  void Retire(pid_t tid, std::vector<CpuSample>* out);
  void DrainSlot(size_t slot, pid_t tid, std::vector<CpuSample>* out);

  SamplerOptions options_;
  uint64_t start_ns_ = 0;
  uint64_t lost_ = 0;
  bool stopped_ = false;
  std::map<pid_t, Armed> armed_;
  std::map<pid_t, SampledThread> threads_;
  std::vector<CpuSample> retired_;  // drained from threads that ended
};

}  // namespace cppdiag::cpu
