// A plain C service that forks the way services do, run with
// LD_PRELOAD=libcppdiag_preload.so (it knows nothing of cppdiag). Each
// SIGUSR1 forks one child; the parent waits for it (at most 10 s) and prints
// "child exited <status>" or "child hung". SIGTERM ends it.
//
//   forking_service fds   the child prints each descriptor it holds besides
//                         0-2 ("fd N -> <link>"), then drops to uid 65534 and
//                         tries to read the parent's secret through each of
//                         them; prints "child fds <count> leaked <0|1>"
//   forking_service exit  the child returns from main: exit handlers and the
//                         preloaded library's static destructors run in it
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char secret[] = "forking-service-secret-7d41c9e2";

static int ChildReportFds(void) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == NULL) return 2;
  int fds[256];
  int count = 0;
  struct dirent* e;
  while ((e = readdir(dir)) != NULL && count < 256) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] == '.' || fd <= 2 || fd == dirfd(dir)) continue;
    char path[64], link[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = '\0';
    printf("fd %d -> %s\n", fd, link);
    fds[count++] = fd;
  }
  closedir(dir);
  // What an unprivileged child can do with what it inherited.
  int leaked = 0;
  if (setgid(65534) == 0 && setuid(65534) == 0) {
    for (int i = 0; i < count; ++i) {
      char buf[sizeof secret];
      if (pread(fds[i], buf, sizeof buf, (off_t)(unsigned long)secret) == (ssize_t)sizeof buf &&
          memcmp(buf, secret, sizeof buf) == 0) {
        printf("fd %d gave the parent's secret to uid 65534\n", fds[i]);
        leaked = 1;
      }
    }
  }
  printf("child fds %d leaked %d\n", count, leaked);
  fflush(stdout);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 2 || (strcmp(argv[1], "fds") != 0 && strcmp(argv[1], "exit") != 0)) {
    fprintf(stderr, "usage: forking_service fds|exit\n");
    return 2;
  }
  int report_fds = strcmp(argv[1], "fds") == 0;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, NULL);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0 || sig == SIGTERM) return 0;
    pid_t child = fork();
    if (child < 0) {
      perror("fork");
      return 1;
    }
    if (child == 0) {
      if (report_fds) _exit(ChildReportFds());
      return 0;  // from main, as a worker process that is done would
    }
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 1000 && (done = waitpid(child, &status, WNOHANG)) == 0; ++i) {
      struct timespec ten_ms = {0, 10 * 1000 * 1000};
      nanosleep(&ten_ms, NULL);
    }
    if (done == child) {
      printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    } else {
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      printf("child hung\n");
    }
    fflush(stdout);
  }
}
