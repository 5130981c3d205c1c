/* A plain C program that knows nothing of cppdiag: the LD_PRELOAD tests run
 * it with libcppdiag_preload.so.
 *
 *   leaky leak MB   leak MB MiB from leak_from_c() in 64 KiB blocks, print
 *                   "leaked <bytes>", then wait to be killed
 *   leaky segv      print "ready", then dereference a bad pointer
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) static void** leak_from_c(size_t blocks, size_t size) {
  void** kept = malloc(blocks * sizeof(void*));
  for (size_t i = 0; i < blocks; ++i) {
    kept[i] = malloc(size);
    memset(kept[i], 1, size);
  }
  return kept;
}

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "segv") == 0) {
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    volatile int* bad = (volatile int*)(uintptr_t)(argc - 2); /* NULL, unknown to the compiler */
    *bad = 1;
    return 0;
  }
  size_t mb = argc >= 3 ? (size_t)atol(argv[2]) : 16;
  size_t blocks = mb * 16;
  void** kept = leak_from_c(blocks, 64 * 1024);
  printf("leaked %zu\n", blocks * 64 * 1024);
  fflush(stdout);
  for (;;) pause();
  (void)kept;
}
