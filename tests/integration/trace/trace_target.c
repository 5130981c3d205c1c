/* A plain C program, not linked with cppdiag, that `cppdiag trace` samples
 * under LD_PRELOAD=libcppdiag_preload.so: thread "spinner" spends its CPU
 * 3:1 between HotA and HotB (measured on its own CPU clock; phases of
 * random length, so they do not beat with the scheduler tick that CPU-clock
 * timers expire on), and so does "spinner2"; thread "reader"
 * is blocked in read() on a pipe nobody writes. Prints "ready" when both run.
 * With the argument "alloc", thread "allocator" also allocates 64 KiB blocks
 * from AllocBlock, one a millisecond, and frees each (heap samples).
 * Built with frame pointers; each hot function keeps its state on the stack
 * so that GCC gives it a frame. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile uint64_t sink;
static volatile int reader_started;

static uint64_t CpuNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((noinline)) void HotA(uint64_t ns) {
  volatile uint64_t x = 1;
  uint64_t end = CpuNs() + ns;
  while (CpuNs() < end) {
    for (int i = 0; i < 20000; ++i) x = x * 6364136223846793005u + 1442695040888963407u;
  }
  sink = x;
}

__attribute__((noinline)) void HotB(uint64_t ns) {
  volatile uint64_t x = 3;
  uint64_t end = CpuNs() + ns;
  while (CpuNs() < end) {
    for (int i = 0; i < 20000; ++i) x = x * 2862933555777941757u + 3037000493u;
  }
  sink = x;
}

static void* Spinner(void* arg) {
  pthread_setname_np(pthread_self(), (const char*)arg);
  uint64_t rng = (uint64_t)(uintptr_t)arg | 1;
  for (;;) {
    rng = rng * 6364136223846793005u + 1442695040888963407u;
    uint64_t k = 50000 + (rng >> 33) % 100000; /* 50-150 us */
    HotA(3 * k);
    HotB(k);
  }
  return NULL;
}

__attribute__((noinline)) ssize_t BlockedRead(int fd) {
  char c;
  reader_started = 1;
  return read(fd, &c, 1);
}

static void* Reader(void* arg) {
  pthread_setname_np(pthread_self(), "reader");
  sink = (uint64_t)BlockedRead(*(int*)arg);
  return NULL;
}

__attribute__((noinline)) void* AllocBlock(size_t n) {
  char* p = malloc(n);
  if (p != NULL) memset(p, 1, 64);
  return p;
}

static void* Allocator(void* arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "allocator");
  const struct timespec ms = {0, 1000000};
  for (;;) {
    free(AllocBlock(64 * 1024));
    nanosleep(&ms, NULL); /* pacing of the workload, not synchronisation */
  }
  return NULL;
}

int main(int argc, char** argv) {
  static int fds[2];
  if (pipe(fds) != 0) return 1;
  pthread_t a, a2, b;
  if (pthread_create(&a, NULL, Spinner, "spinner1") != 0) return 1;
  if (pthread_create(&a2, NULL, Spinner, "spinner2") != 0) return 1;
  if (pthread_create(&b, NULL, Reader, &fds[0]) != 0) return 1;
  if (argc > 1 && strcmp(argv[1], "alloc") == 0) {
    pthread_t c;
    if (pthread_create(&c, NULL, Allocator, NULL) != 0) return 1;
  }
  while (!reader_started) sched_yield();
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  for (;;) pause();
}
