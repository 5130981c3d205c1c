/* A plain C program that knows nothing of cppdiag: the LD_PRELOAD tests run
 * it with libcppdiag_preload.so.
 *
 *   leaky leak MB   leak MB MiB from leak_from_c() in 64 KiB blocks, print
 *                   "leaked <bytes>", then wait to be killed
 *   leaky serve     print "ready <pid>"; on SIGUSR1 start leaking a 64 KiB
 *                   block from leak_from_c() every 2 ms (printing "so far
 *                   <bytes since SIGUSR1>" at each MiB), on SIGUSR2 stop and
 *                   print "leaked <bytes since SIGUSR1> total <bytes>"; then
 *                   wait for the next signal (SIGTERM/SIGKILL end it)
 *   leaky segv      print "ready", then dereference a bad pointer
 *
 * serve takes its signals synchronously (sigtimedwait with them blocked), so
 * no handler runs and SIGUSR1 then SIGUSR2 are taken in order.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { kBlock = 64 * 1024 };

/* The frame the heap diff must name first: noinline and noclone so that it
 * is a real frame under its own symbol. */
__attribute__((noinline, noclone)) void** leak_from_c(size_t blocks, size_t size) {
  void** kept = malloc(blocks * sizeof(void*));
  for (size_t i = 0; i < blocks; ++i) {
    kept[i] = malloc(size);
    memset(kept[i], 1, size);
  }
  return kept;
}

static int serve(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
    perror("leaky: sigprocmask");
    return 1;
  }
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  int leaking = 0;
  size_t phase = 0, total = 0;
  const struct timespec tick = {0, 2 * 1000 * 1000};
  for (;;) {
    int sig;
    if (leaking) {
      void** kept = leak_from_c(1, kBlock);
      (void)kept; /* the 8-byte array is leaked too, attributed to leak_from_c */
      phase += kBlock;
      total += kBlock;
      if (phase % (1 << 20) == 0) {
        printf("so far %zu\n", phase);
        fflush(stdout);
      }
      sig = sigtimedwait(&set, NULL, &tick);
    } else {
      sig = sigwaitinfo(&set, NULL);
    }
    if (sig == SIGUSR1) {
      leaking = 1;
      phase = 0;
    } else if (sig == SIGUSR2 && leaking) {
      leaking = 0;
      printf("leaked %zu total %zu\n", phase, total);
      fflush(stdout);
    }
  }
}

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "segv") == 0) {
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    volatile int* bad = (volatile int*)(uintptr_t)(argc - 2); /* NULL, unknown to the compiler */
    *bad = 1;
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "serve") == 0) return serve();
  if (argc < 2 || strcmp(argv[1], "leak") != 0) {
    fprintf(stderr, "usage: leaky leak MB | serve | segv\n");
    return 2;
  }
  size_t mb = argc >= 3 ? (size_t)atol(argv[2]) : 16;
  size_t blocks = mb * 16;
  void** kept = leak_from_c(blocks, kBlock);
  printf("leaked %zu\n", blocks * kBlock);
  fflush(stdout);
  for (;;) pause();
  (void)kept;
}
