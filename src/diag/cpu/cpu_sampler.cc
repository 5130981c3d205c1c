#include "diag/cpu/cpu_sampler.h"

#include <dirent.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <new>
#include <string_view>

#include "common/async_safe.h"
#include "common/status.h"
#include "diag/cpu/internal/sample_ring.h"
#include "diag/cpu/internal/signal_handler.h"

namespace cppdiag::cpu {
namespace {

using internal::kMaxFrames;
using internal::RawSample;
using internal::ThreadSlot;

std::atomic<bool> g_running{false};

// The slots, mapped once for the process's life (a signal queued after a
// trace ends may still write one) and never populated before use: 512
// threads' rings are ~34 MiB of address space, touched only for threads
// that are sampled.
ThreadSlot* g_slots = nullptr;
bool g_slot_used[CpuSampler::kMaxThreads];  // owned by the running sampler

Status MapSlots() {
  if (g_slots != nullptr) return OkStatus();
  ScopedMmap map = ScopedMmap::Anonymous(sizeof(ThreadSlot) * CpuSampler::kMaxThreads, false);
  if (!map.ok()) return Error::FromErrno("mmap", "CPU sampler buffers");
  auto* slots = static_cast<ThreadSlot*>(map.release());
  for (size_t i = 0; i < CpuSampler::kMaxThreads; ++i) new (&slots[i]) ThreadSlot;
  g_slots = slots;
  internal::SetSlotRange(g_slots, CpuSampler::kMaxThreads);
  return OkStatus();
}

// The kernel's clock id of one thread's CPU time (glibc's
// MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED), what pthread_getcpuclockid
// returns for it): usable with a tid, where we have no pthread_t.
clockid_t ThreadCpuClock(pid_t tid) {
  return static_cast<clockid_t>((~static_cast<uint32_t>(tid) << 3) | 2u | 4u);
}

std::string ReadTaskFile(pid_t tid, const char* file) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/%s", tid, file);
  char buf[4096];
  ssize_t n = ReadSmallFile(path, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string ThreadName(pid_t tid) {
  std::string name = ReadTaskFile(tid, "comm");
  while (!name.empty() && name.back() == '\n') name.pop_back();
  return name;
}

bool BlocksSigprof(pid_t tid) {
  std::string status = ReadTaskFile(tid, "status");
  size_t at = status.find("\nSigBlk:");
  if (at == std::string::npos) return false;
  std::string_view rest = std::string_view(status).substr(at + 8);
  while (!rest.empty() && (rest[0] == '\t' || rest[0] == ' ')) rest.remove_prefix(1);
  uint64_t mask = 0;
  if (ParseHex(rest, &mask) == 0) return false;
  return (mask >> (internal::kSampleSignal - 1)) & 1;
}

std::vector<pid_t> ListThreads() {
  std::vector<pid_t> tids;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return tids;
  while (dirent* e = ::readdir(dir)) {
    uint64_t tid = 0;
    std::string_view name(e->d_name);
    if (ParseDecimal(name, &tid) == name.size() && tid > 0) tids.push_back(static_cast<pid_t>(tid));
  }
  ::closedir(dir);
  return tids;
}

}  // namespace

const char* ProfileKindName(ProfileKind kind) { return kind == ProfileKind::kCpu ? "cpu" : "wall"; }

Result<ProfileKind> ParseProfileKind(const std::string& name) {
  if (name == "cpu") return ProfileKind::kCpu;
  if (name == "wall") return ProfileKind::kWall;
  return Error::Invalid("profile '" + name + "' is not one of cpu, wall");
}

Result<std::unique_ptr<CpuSampler>> CpuSampler::Start(SamplerOptions options) {
  if (options.rate_hz < 1 || options.rate_hz > 10000) {
    return Error::Invalid("sampling rate " + std::to_string(options.rate_hz) +
                          " Hz is out of range (1 to 10000)");
  }
  bool expected = false;
  if (!g_running.compare_exchange_strong(expected, true)) {
    return Error(EBUSY, "", "a trace is already running in this process");
  }
  Status st = MapSlots();
  if (st.ok()) st = internal::InstallSigprofHandler();
  if (!st.ok()) {
    g_running.store(false);
    return st.error();
  }
  std::unique_ptr<CpuSampler> s(new CpuSampler(std::move(options)));
  s->start_ns_ = MonotonicNs();
  s->Rescan();
  return s;
}

CpuSampler::~CpuSampler() {
  std::vector<CpuSample> dropped;
  Stop(&dropped);
}

bool CpuSampler::Arm(pid_t tid, size_t slot, int* timer_id, std::string* why_not) const {
  ThreadSlot& s = g_slots[slot];
  s.ring.Discard();
  s.ring.TakeLost();
  s.tid.store(tid, std::memory_order_release);
  sigevent sev = {};
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = internal::kSampleSignal;
  sev.sigev_value.sival_ptr = &s;
  sev._sigev_un._tid = tid;
  clockid_t clock = options_.kind == ProfileKind::kCpu ? ThreadCpuClock(tid) : CLOCK_MONOTONIC;
  int id = -1;
  if (syscall(SYS_timer_create, clock, &sev, &id) != 0) {
    *why_not = "timer_create: " + ErrnoDescription(errno);
    s.tid.store(0, std::memory_order_release);
    return false;
  }
  itimerspec spec = {};
  uint64_t period = period_ns();
  spec.it_interval.tv_sec = static_cast<time_t>(period / 1000000000);
  spec.it_interval.tv_nsec = static_cast<long>(period % 1000000000);
  // Wall timers start spread over a period, so threads are not all
  // interrupted at the same instant.
  uint64_t first = options_.kind == ProfileKind::kWall
                       ? period / 16 * (1 + static_cast<uint64_t>(tid) % 16)
                       : period;
  spec.it_value.tv_sec = static_cast<time_t>(first / 1000000000);
  spec.it_value.tv_nsec = static_cast<long>(first % 1000000000);
  if (syscall(SYS_timer_settime, id, 0, &spec, nullptr) != 0) {
    *why_not = "timer_settime: " + ErrnoDescription(errno);
    syscall(SYS_timer_delete, id);
    s.tid.store(0, std::memory_order_release);
    return false;
  }
  *timer_id = id;
  return true;
}

void CpuSampler::DrainSlot(size_t slot, pid_t tid, std::vector<CpuSample>* out) {
  ThreadSlot& s = g_slots[slot];
  s.ring.Drain([&](const RawSample& raw) {
    if (raw.time_ns < start_ns_) return;  // queued by an earlier trace's timer
    CpuSample sample;
    sample.tid = tid;
    sample.time_ns = raw.time_ns;
    sample.weight = raw.weight;
    size_t depth = raw.depth < kMaxFrames ? raw.depth : kMaxFrames;
    sample.pcs.assign(raw.pcs, raw.pcs + depth);
    out->push_back(std::move(sample));
  });
  lost_ += s.ring.TakeLost();
}

void CpuSampler::Retire(pid_t tid, std::vector<CpuSample>* out) {
  auto it = armed_.find(tid);
  if (it == armed_.end()) return;
  syscall(SYS_timer_delete, it->second.timer_id);
  DrainSlot(it->second.slot, tid, out);
  g_slots[it->second.slot].tid.store(0, std::memory_order_release);
  g_slot_used[it->second.slot] = false;
  armed_.erase(it);
}

void CpuSampler::Rescan() {
  if (stopped_) return;
  std::vector<pid_t> live = ListThreads();
  std::set<pid_t> live_set(live.begin(), live.end());
  for (auto it = armed_.begin(); it != armed_.end();) {
    pid_t tid = (it++)->first;
    if (live_set.count(tid) == 0) Retire(tid, &retired_);
  }
  for (pid_t tid : live) {
    if (options_.exclude_tids.count(tid) != 0 || threads_.count(tid) != 0) continue;
    SampledThread& t = threads_[tid];
    t.tid = tid;
    t.name = ThreadName(tid);
    if (BlocksSigprof(tid)) {
      t.why_not = "blocks SIGPROF";
      continue;
    }
    size_t slot = 0;
    while (slot < kMaxThreads && g_slot_used[slot]) ++slot;
    if (slot == kMaxThreads) {
      t.why_not = "more than " + std::to_string(kMaxThreads) + " threads";
      continue;
    }
    int timer_id = -1;
    if (!Arm(tid, slot, &timer_id, &t.why_not)) continue;
    g_slot_used[slot] = true;
    armed_[tid] = {slot, timer_id};
    t.sampled = true;
  }
}

void CpuSampler::Drain(std::vector<CpuSample>* out) {
  for (CpuSample& s : retired_) out->push_back(std::move(s));
  retired_.clear();
  for (const auto& [tid, armed] : armed_) DrainSlot(armed.slot, tid, out);
}

void CpuSampler::Stop(std::vector<CpuSample>* out) {
  if (stopped_) return;
  for (auto& [tid, t] : threads_) {
    if (armed_.count(tid) != 0) {
      if (std::string name = ThreadName(tid); !name.empty()) t.name = name;
    }
  }
  while (!armed_.empty()) Retire(armed_.begin()->first, &retired_);
  Drain(out);
  stopped_ = true;
  g_running.store(false);
}

}  // namespace cppdiag::cpu
