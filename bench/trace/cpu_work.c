/* A CPU-bound benchmark for bench/trace/trace_bench.sh: starts two threads,
 * prints "ready PID", waits for a line on stdin (the bench starts its
 * profiler first), then the two threads run a chain of hashing calls (Outer -> Middle -> Inner,
 * frame pointers kept, so every profiler gets real stacks) for SECONDS, and it prints "ops_per_s N"
 * (both threads' rounds per second of wall time) and "ops_per_cpu_s N" (per second of the process's
 * CPU time, user and system: what a profiler in the process costs, whatever else the machine runs).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double g_seconds = 4;
static volatile uint64_t g_sink;

static double CpuSeconds(void) { /* the whole process: a profiler's threads in it count */
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double Now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((noinline)) uint64_t Inner(uint64_t x) {
  for (int i = 0; i < 2000; ++i) x = x * 6364136223846793005u + 1442695040888963407u;
  return x;
}
__attribute__((noinline)) uint64_t Middle(uint64_t x) { return Inner(x) ^ Inner(x + 1); }
__attribute__((noinline)) uint64_t Outer(uint64_t x) { return Middle(x) + Middle(x ^ 7); }

static pthread_barrier_t g_go;

static void* Work(void* arg) {
  uint64_t* rounds = arg;
  uint64_t x = (uintptr_t)arg;
  pthread_barrier_wait(&g_go); /* created before the profiler starts: sampled from the first */
  double end = Now() + g_seconds;
  while (Now() < end) {
    for (int k = 0; k < 64; ++k) x = Outer(x);
    ++*rounds;
  }
  g_sink = x;
  return NULL;
}

int main(int argc, char** argv) {
  if (argc > 1) g_seconds = atof(argv[1]);
  pthread_t t[2];
  uint64_t rounds[2] = {0, 0};
  pthread_barrier_init(&g_go, NULL, 3);
  for (int i = 0; i < 2; ++i) pthread_create(&t[i], NULL, Work, &rounds[i]);
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  char line[16];
  if (fgets(line, sizeof line, stdin) == NULL) return 1;
  double start = Now(), cpu_start = CpuSeconds();
  pthread_barrier_wait(&g_go);
  for (int i = 0; i < 2; ++i) pthread_join(t[i], NULL);
  double ops = (double)(rounds[0] + rounds[1]);
  printf("ops_per_s %.1f\n", ops / (Now() - start));
  printf("ops_per_cpu_s %.1f\n", ops / (CpuSeconds() - cpu_start));
  return 0;
}
