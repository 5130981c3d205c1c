/* A target that works against the cppdiag CLI, run with
 * LD_PRELOAD=libcppdiag_preload.so (it knows nothing of cppdiag itself):
 *
 *   hostile_target name           re-exec itself with a hostile argv[0], set a
 *                                 hostile comm (PR_SET_NAME), print "ready <pid>"
 *   hostile_target fifo ELF DIR   map a copy of ELF executable from DIR/libtrap.so,
 *                                 then replace that file with a FIFO
 *   hostile_target symlink ELF DIR  the same, replaced by a symbolic link to a
 *                                 FIFO (DIR/outside.fifo) instead
 *
 * then wait to be killed. The strings are in hostile_target.h, shared with
 * the test. A CLI that opens a FIFO it meets at a mapping's path blocks
 * forever (no writer): the test sees a hang as a failure.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "integration/ondemand/hostile_target.h"

static _Noreturn void ready(void) {
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  for (;;) pause();
}

static int fail(const char* what) {
  perror(what);
  return 1;
}

/* Copies `elf` to `path` and maps it executable, as a loaded library is. */
static int map_copy(const char* elf, const char* path) {
  int in = open(elf, O_RDONLY | O_CLOEXEC);
  int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  struct stat st;
  if (in < 0 || out < 0 || fstat(in, &st) != 0) return fail("hostile_target: copy");
  for (off_t done = 0; done < st.st_size;) {
    ssize_t n = sendfile(out, in, &done, (size_t)(st.st_size - done));
    if (n <= 0) return fail("hostile_target: sendfile");
  }
  close(in);
  close(out);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("hostile_target: open copy");
  void* m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
  if (m == MAP_FAILED) return fail("hostile_target: mmap");
  close(fd);
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "name") == 0) {
    char* args[] = {(char*)kHostileArgv0, (char*)"named", NULL};
    execv("/proc/self/exe", args);
    return fail("hostile_target: execv");
  }
  if (argc >= 2 && strcmp(argv[1], "named") == 0) {
    if (prctl(PR_SET_NAME, kHostileComm) != 0) return fail("hostile_target: PR_SET_NAME");
    ready();
  }
  if (argc == 4 && (strcmp(argv[1], "fifo") == 0 || strcmp(argv[1], "symlink") == 0)) {
    char path[4096], fifo[4096];
    snprintf(path, sizeof path, "%s/%s", argv[3], kTrapLibrary);
    snprintf(fifo, sizeof fifo, "%s/outside.fifo", argv[3]);
    if (map_copy(argv[2], path) != 0) return 1;
    if (unlink(path) != 0) return fail("hostile_target: unlink");
    if (strcmp(argv[1], "fifo") == 0) {
      if (mkfifo(path, 0666) != 0) return fail("hostile_target: mkfifo");
    } else if (mkfifo(fifo, 0666) != 0 || symlink(fifo, path) != 0) {
      return fail("hostile_target: mkfifo/symlink");
    }
    ready();
  }
  fprintf(stderr, "usage: hostile_target name | fifo ELF DIR | symlink ELF DIR\n");
  return 2;
}
