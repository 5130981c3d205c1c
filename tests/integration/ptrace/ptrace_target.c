// A multithreaded program with no libcppdiag, for `dump collect --ptrace`:
//   ptrace_target [--workers N] [--churn] [--fill-mb M] [--leak-mb L]
//                 [--main-read | --main-sleep] [--idle] [--crash] [--exit-code C] [--late-thread]
// N threads block in wait_on_pipe(), one spins in spin_forever() (none with
// --idle: the process then uses no CPU), the main
// thread waits for signals in main_wait(): SIGUSR1 prints "ALIVE <n>" (with --crash: writes through
// a null pointer in crash_here(), with no handler for the SIGSEGV), SIGUSR2 frees what
// --leak-mb leaked and prints "FREED <n>", SIGTERM exits 0. --fill-mb writes M MiB of anonymous
// memory with non-zero bytes (a dump with that much to write); --leak-mb writes L MiB more at each
// SIGUSR1, before "ALIVE" (RSS that grows on demand). --churn adds a thread that keeps starting
// short-lived threads (for attaches that race thread creation and exit). Two 1 MiB anonymous
// regions hold markers decoded at run time (so no copy sits in the binary): one MADV_DONTDUMP
// ("PTRACE-DONTDUMP-MARKER"), one plain ("PTRACE-KEEP-MARKER"). Prints "READY pid=<pid>
// threads=<count>" once every thread runs. --exit-code C: SIGUSR1 calls exit(C). --late-thread
// (with --main-read): SIGUSR2 starts a thread "late" blocked in read() and prints "LATE <tid>".
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static pthread_barrier_t started;
static volatile unsigned long spins;

// The markers, each byte + 1, so the binary holds no copy.
static const char kDontDump[] = "QUSBDF.EPOUEVNQ.NBSLFS";
static const char kKeep[] = "QUSBDF.LFFQ.NBSLFS";

static void fill_marker(char* region, size_t size, const char* encoded) {
  size_t len = strlen(encoded);
  for (size_t at = 0; at + len < size; at += 4096)
    for (size_t i = 0; i < len; ++i) region[at + i] = (char)(encoded[i] - 1);
}

// `size` bytes of fresh anonymous memory between two PROT_NONE pages, so
// that it merges with no neighbour (a thread's stack, say) into one mapping.
static char* guarded_region(size_t size) {
  char* p = mmap(NULL, size + 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED || mprotect(p + 4096, size, PROT_READ | PROT_WRITE) != 0) return NULL;
  return p + 4096;
}

__attribute__((noinline)) static void wait_on_pipe(int fd) {
  char c;
  while (read(fd, &c, 1) != 0) {
  }
}

// The workers' thread ids, so main can wait until each is blocked in read().
static pid_t worker_tids[64];
static volatile int worker_count;

// True once thread `tid` sits in the read syscall (/proc's syscall file
// starts with its number, 0 on x86-64): a dump then finds it in wait_on_pipe,
// not still on its way back from the barrier.
static int blocked_in_read(pid_t tid) {
  char path[64], buf[32] = {0};
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
  FILE* f = fopen(path, "r");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  return n >= 2 && buf[0] == '0' && buf[1] == ' ';
}

static void* worker(void* arg) {
  int fds[2];
  if (pipe(fds) != 0) abort();
  int slot = __atomic_fetch_add(&worker_count, 1, __ATOMIC_SEQ_CST);
  if (slot < 64) __atomic_store_n(&worker_tids[slot], gettid(), __ATOMIC_SEQ_CST);
  pthread_barrier_wait(&started);
  wait_on_pipe(fds[0]);
  (void)arg;
  return NULL;
}

__attribute__((noinline)) static void spin_forever(void) {
  for (;;) spins = spins + 1;
}

static void* spinner(void* arg) {
  pthread_barrier_wait(&started);
  spin_forever();
  (void)arg;
  return NULL;
}

static void* short_lived(void* arg) { return arg; }

static void* churner(void* arg) {
  pthread_barrier_wait(&started);
  for (;;) {
    pthread_t t;
    if (pthread_create(&t, NULL, short_lived, NULL) == 0) pthread_join(t, NULL);
  }
  (void)arg;
  return NULL;
}

// --late-thread: a thread started on SIGUSR2, after a tracer attached; it
// names itself "late" and blocks in read().
static int late_pipe[2];
static volatile pid_t late_tid;
static void* late_thread(void* arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "late");
  late_tid = gettid();
  char c;
  (void)!read(late_pipe[0], &c, 1);
  return NULL;
}

__attribute__((noinline)) static int main_wait(sigset_t* set) {
  int sig = 0;
  sigwait(set, &sig);
  return sig;
}

// A write through a null pointer the compiler cannot prove null.
__attribute__((noinline)) static void crash_here(volatile int* volatile* where) { **where = 42; }

static int wake_pipe[2];
static volatile sig_atomic_t woken;

static void on_usr1(int sig) {
  woken = 1;
  char c = sig == SIGUSR2 ? 2 : 1;
  (void)!write(wake_pipe[1], &c, 1);
}

static char last_wake;  // 1: SIGUSR1, 2: SIGUSR2 (--late-thread)

__attribute__((noinline)) static int main_read(void) {
  ssize_t n = read(wake_pipe[0], &last_wake, 1);
  return n == 1 ? 0 : errno;
}

static int start_late_thread(void) {
  pthread_t lt;
  if (pipe(late_pipe) != 0 || pthread_create(&lt, NULL, late_thread, NULL) != 0) return 1;
  while (late_tid == 0 || !blocked_in_read(late_tid)) {
    struct timespec pause = {0, 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  printf("LATE %d\n", (int)late_tid);
  fflush(stdout);
  return 0;
}

__attribute__((noinline)) static int main_sleep(void) {
  struct timespec ts = {100000, 0};
  int rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);  // returns the error
  return rc == EINTR && woken ? 0 : rc == 0 ? ETIMEDOUT : rc;
}

// The main thread's loop with a SIGUSR1 handler (--main-read, --main-sleep).
static int handler_loop(int use_read, int late) {
  if (pipe(wake_pipe) != 0) return 1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  if (late) {
    sigaction(SIGUSR2, &sa, NULL);
    sigaddset(&usr1, SIGUSR2);
  }
  pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
  for (int alive = 1;; ++alive) {
    woken = 0;
    int err = use_read ? main_read() : main_sleep();
    if (err != 0) {
      printf("MAIN FAILED errno=%d\n", err);
      fflush(stdout);
      return 3;
    }
    if (use_read && last_wake == 2) {
      if (start_late_thread() != 0) return 1;
      --alive;
      continue;
    }
    printf("ALIVE %d\n", alive);
    fflush(stdout);
  }
}

int main(int argc, char** argv) {
  int workers = 4, churn = 0, fill_mb = 0, main_mode = 0, leak_mb = 0, idle = 0, crash = 0;
  int exit_code = -1, late = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) workers = atoi(argv[++i]);
    if (strcmp(argv[i], "--churn") == 0) churn = 1;
    if (strcmp(argv[i], "--fill-mb") == 0 && i + 1 < argc) fill_mb = atoi(argv[++i]);
    if (strcmp(argv[i], "--leak-mb") == 0 && i + 1 < argc) leak_mb = atoi(argv[++i]);
    if (strcmp(argv[i], "--main-read") == 0) main_mode = 1;
    if (strcmp(argv[i], "--main-sleep") == 0) main_mode = 2;
    if (strcmp(argv[i], "--idle") == 0) idle = 1;
    if (strcmp(argv[i], "--crash") == 0) crash = 1;
    if (strcmp(argv[i], "--exit-code") == 0 && i + 1 < argc) exit_code = atoi(argv[++i]);
    if (strcmp(argv[i], "--late-thread") == 0) late = 1;
  }
  if (fill_mb > 0) {
    size_t bytes = (size_t)fill_mb << 20;
    unsigned char* fill = malloc(bytes);
    if (fill == NULL) return 1;
    for (size_t i = 0; i < bytes; ++i) fill[i] = (unsigned char)(i * 2654435761u >> 13) | 1;
  }
  const size_t size = 1 << 20;
  char* dontdump = guarded_region(size);
  char* keep = guarded_region(size);
  if (dontdump == NULL || keep == NULL) return 1;
  if (madvise(dontdump, size, MADV_DONTDUMP) != 0) return 1;
  fill_marker(dontdump, size, kDontDump);
  fill_marker(keep, size, kKeep);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, NULL);  // inherited: only main_wait takes them

  int threads = workers + !idle + churn;
  pthread_barrier_init(&started, NULL, (unsigned)threads + 1);
  pthread_t t;
  for (int i = 0; i < workers; ++i) pthread_create(&t, NULL, worker, NULL);
  if (!idle) pthread_create(&t, NULL, spinner, NULL);
  if (churn) pthread_create(&t, NULL, churner, NULL);
  pthread_barrier_wait(&started);
  for (int i = 0; i < workers && i < 64; ++i) {
    while (!blocked_in_read(__atomic_load_n(&worker_tids[i], __ATOMIC_SEQ_CST))) {
      struct timespec pause = {0, 1000 * 1000};
      nanosleep(&pause, NULL);
    }
  }
  printf("READY pid=%d threads=%d\n", getpid(), threads + 1);
  fflush(stdout);
  if (main_mode != 0) return handler_loop(main_mode == 1, late);
  static char* leaks[1024];
  int nleaks = 0, freed = 0;
  for (int alive = 1;; ++alive) {
    int sig = main_wait(&set);
    if (sig == SIGTERM) return 0;
    if (sig == SIGUSR2) {
      while (nleaks > 0) free(leaks[--nleaks]);
      printf("FREED %d\n", ++freed);
      fflush(stdout);
      --alive;
      continue;
    }
    if (crash) {
      volatile int* volatile null = NULL;
      crash_here(&null);
    }
    if (exit_code >= 0) exit(exit_code);
    if (leak_mb > 0 && nleaks < 1024) {
      char* leak = malloc((size_t)leak_mb << 20);
      if (leak == NULL) return 1;
      memset(leak, 0x5a, (size_t)leak_mb << 20);
      leaks[nleaks++] = leak;
    }
    printf("ALIVE %d\n", alive);
    fflush(stdout);
  }
}
