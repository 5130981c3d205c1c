// Leaks from a named noinline function for a few seconds, then prints its
// own heap profile as text, symbolized in process with dladdr (the CLI does
// this out of process with elfutils; this target tests the profiler alone).
//
//   heap_leak_target SECONDS PERIOD_BYTES
//   -> "leaked <bytes>"
//      "stack <estimated_bytes> <sampled_count> <sym>;<sym>;..." top 5 by bytes
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "diag/heap/heap_profile.h"
#include "diag/heap/heap_profiler.h"

namespace {

std::vector<void*> g_kept;

// Noise: allocations that are freed again.
__attribute__((noinline)) void ChurnAndFree() {
  std::vector<std::string> v;
  for (int i = 0; i < 1000; ++i) v.emplace_back(200, 'x');
}

std::string Symbol(uint64_t pc) {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(pc - 1), &info) != 0 && info.dli_sname != nullptr) {
    return info.dli_sname;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(pc));
  return buf;
}

}  // namespace

// The leak every run must find at the top of the profile (extern "C" and
// global, so that dladdr names it).
extern "C" __attribute__((noinline)) size_t LeakFromNamedFunction(size_t blocks, size_t size) {
  for (size_t i = 0; i < blocks; ++i) {
    auto* p = static_cast<char*>(std::malloc(size));
    std::memset(p, 1, size);
    g_kept.push_back(p);
  }
  return blocks * size;
}

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 3;
  uint64_t period = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 512 * 1024;
  if (!cppdiag::heap::StartHeapProfiler(period)) return 2;
  g_kept.reserve(1 << 20);
  size_t leaked = 0;
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    leaked += LeakFromNamedFunction(64, 16 * 1024);  // 1 MiB a round
    ChurnAndFree();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  cppdiag::heap::HeapProfile p = cppdiag::heap::CollectHeapProfile();
  std::sort(p.stacks.begin(), p.stacks.end(),
            [](const auto& a, const auto& b) { return a.estimated_bytes > b.estimated_bytes; });
  std::printf("leaked %zu\n", leaked);
  for (size_t i = 0; i < p.stacks.size() && i < 5; ++i) {
    const auto& s = p.stacks[i];
    std::string frames;
    for (uint64_t pc : s.pcs) frames += Symbol(pc) + ";";
    std::printf("stack %.0f %llu %s\n", s.estimated_bytes,
                static_cast<unsigned long long>(s.sampled_count), frames.c_str());
  }
  return 0;
}
