// leak_rate --rate MIB_PER_S --total MIB: a process that leaks at a steady
// rate, for the latency of `cppdiag monitor`'s memory triggers. Prints
// "READY", waits for SIGUSR1, then maps and touches one MiB at a time, paced
// against the clock, until TOTAL MiB; prints "LEAKED <total>" and waits to
// be killed. The leaked chunks are MADV_DONTDUMP (resident and charged to
// the cgroup, kept out of a core), so a `heap` dump stays small and still
// holds `leaked_mib`: what had leaked the moment the dump was taken.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

volatile long leaked_mib;  // read from the dump with gdb: print leaked_mib

static volatile sig_atomic_t go;
static void OnGo(int sig) {
  (void)sig;
  go = 1;
}

static double Now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  double rate = 100;
  long total = 400;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--rate") == 0)
      rate = atof(argv[i + 1]);
    else if (strcmp(argv[i], "--total") == 0)
      total = atol(argv[i + 1]);
  }
  if (rate <= 0 || total <= 0) {
    fprintf(stderr, "usage: leak_rate --rate MIB_PER_S --total MIB\n");
    return 2;
  }
  sigset_t usr1, old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, &old);  // no lost wake-up between the check and the wait
  signal(SIGUSR1, OnGo);
  printf("READY\n");
  fflush(stdout);
  while (!go) sigsuspend(&old);
  const double start = Now();
  for (long i = 0; i < total; ++i) {
    char* p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    madvise(p, 1 << 20, MADV_DONTDUMP);
    memset(p, 0x5a, 1 << 20);
    leaked_mib = i + 1;
    const double due = start + (double)(i + 1) / rate;  // pace: the mean rate, not per chunk
    const double left = due - Now();
    if (left > 0) usleep((useconds_t)(left * 1e6));
  }
  printf("LEAKED %ld\n", total);
  fflush(stdout);
  for (;;) pause();
}
