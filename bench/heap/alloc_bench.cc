// An allocation-heavy workload for measuring allocator hooks: THREADS threads
// each do OPS malloc/free pairs of mixed sizes (16 B to 64 KiB, mostly small),
// keeping a window of live blocks so frees are not LIFO. Prints its own wall
// wall time and the process's CPU time for the work alone (startup and exit
// excluded). CPU time is the steadier figure on a shared machine: other
// processes' load stretches wall time far more than it does CPU time.
//
//   alloc_bench [THREADS=4] [OPS_PER_THREAD=10000000]
//   -> "alloc_bench threads=4 ops=40000000 seconds=1.234 cpu_seconds=4.567 ns_per_op=30.8"
//
// Not linked with cppdiag: heap_bench.sh runs it plain, with
// LD_PRELOAD=libcppdiag_preload.so and under heaptrack.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <thread>
#include <vector>

namespace {

void Work(unsigned seed, long ops, unsigned long* sink) {
  constexpr int kWindow = 4096;
  void* live[kWindow] = {};
  unsigned long x = seed * 2654435761u + 1;
  unsigned long sum = 0;
  for (long i = 0; i < ops; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    // 90 % small (16..272 B), 9 % medium (to 4 KiB), 1 % large (to 64 KiB).
    unsigned r = x % 100;
    size_t size = r < 90   ? 16 + (x >> 8) % 256
                  : r < 99 ? 256 + (x >> 8) % 3840
                           : 4096 + (x >> 8) % 61440;
    int slot = static_cast<int>((x >> 32) % kWindow);
    std::free(live[slot]);
    auto* p = static_cast<unsigned char*>(std::malloc(size));
    p[0] = static_cast<unsigned char>(i);
    sum += p[0];
    live[slot] = p;
  }
  for (void* p : live) std::free(p);
  *sink = sum;
}

}  // namespace

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 4;
  long ops = argc > 2 ? std::atol(argv[2]) : 10000000;
  std::vector<std::thread> pool;
  std::vector<unsigned long> sinks(static_cast<size_t>(threads));
  double cpu_start = CpuSeconds();
  auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t)
    pool.emplace_back(Work, t + 1, ops, &sinks[static_cast<size_t>(t)]);
  for (auto& th : pool) th.join();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double cpu = CpuSeconds() - cpu_start;
  std::printf("alloc_bench threads=%d ops=%ld seconds=%.3f cpu_seconds=%.3f ns_per_op=%.1f\n",
              threads, ops * threads, s, cpu, s * 1e9 / static_cast<double>(ops * threads));
  return 0;
}
