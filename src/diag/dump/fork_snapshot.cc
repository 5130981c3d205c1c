// Async-signal-safe: nothing here allocates, locks or uses stdio.
#include "diag/dump/fork_snapshot.h"

#include <elf.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/async_safe.h"
#include "common/io.h"

namespace cppdiag::dump {
namespace {

// ioprio_set(2) (glibc has no wrapper): IOPRIO_WHO_PROCESS, and
// IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 7).
constexpr int kIoprioWhoProcess = 1;
constexpr int kIoprioLowestBestEffort = (2 << 13) | 7;

// Appends `s` to out[*n..size-1], always NUL-terminated.
void Append(char* out, size_t size, size_t* n, const char* s) {
  while (*s != '\0' && *n + 1 < size) out[(*n)++] = *s++;
  out[*n] = '\0';
}

void AppendMiB(char* out, size_t size, size_t* n, uint64_t bytes) {
  char digits[24];
  FormatDecimal(static_cast<uint64_t>(bytes >> 20), digits, sizeof digits);
  Append(out, size, n, digits);
  Append(out, size, n, " MiB");
}

// The decimal number after any blanks at p; *ok says whether there was one.
uint64_t ParseDecimal(const char* p, const char* end, bool* ok) {
  while (p < end && (*p == ' ' || *p == '\t')) ++p;
  uint64_t v = 0;
  *ok = cppdiag::ParseDecimal(std::string_view(p, static_cast<size_t>(end - p)), &v) > 0;
  return v;
}

uint64_t NowMs() { return MonotonicNs() / 1000000; }

}  // namespace

void ForkReport::Reset() {
  bytes_written.store(0);
  bytes_total.store(0);
  err = 0;
  size_bytes = data_bytes = 0;
  threads = threads_not_captured = 0;
  mappings_truncated = false;
  failed_call = "";
  done.store(0, std::memory_order_release);
}

// The core writer writes the ELF header in one call and then one program
// header per call; their entries give the file's final size.
void ProgressSink::Inspect(uint64_t at, const uint8_t* data, size_t len) {
  if (at == 0 && len >= sizeof(Elf64_Ehdr)) {
    Elf64_Ehdr eh;
    std::memcpy(&eh, data, sizeof eh);
    if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_phentsize != sizeof(Elf64_Phdr)) {
      return;
    }
    uint64_t phnum = eh.e_phnum;
    if (phnum == PN_XNUM && eh.e_shoff > eh.e_phoff) {
      phnum = (eh.e_shoff - eh.e_phoff) / sizeof(Elf64_Phdr);  // the table ends where it starts
    }
    ph_start_ = eh.e_phoff;
    ph_end_ = eh.e_phoff + phnum * sizeof(Elf64_Phdr);
  }
  if (ph_end_ <= ph_start_) return;
  for (size_t i = 0; i + sizeof(Elf64_Phdr) <= len; ++i) {
    uint64_t pos = at + i;
    if (pos >= ph_end_) break;
    if (pos < ph_start_ || (pos - ph_start_) % sizeof(Elf64_Phdr) != 0) continue;
    Elf64_Phdr ph;
    std::memcpy(&ph, data + i, sizeof ph);
    uint64_t end = ph.p_offset + ph.p_filesz;
    if ((ph.p_type == PT_LOAD || ph.p_type == PT_NOTE) && end > total_) total_ = end;
    i += sizeof(Elf64_Phdr) - 1;
  }
  report_->bytes_total.store(total_, std::memory_order_relaxed);
}

int ProgressSink::Write(const void* data, size_t len) {
  uint64_t at = inner_->offset();
  if (at < ph_end_ || at == 0) Inspect(at, static_cast<const uint8_t*>(data), len);
  int err = inner_->Write(data, len);
  report_->bytes_written.store(inner_->offset(), std::memory_order_relaxed);
  return err;
}

int ProgressSink::Skip(uint64_t len) {
  int err = inner_->Skip(len);
  report_->bytes_written.store(inner_->offset(), std::memory_order_relaxed);
  return err;
}

int ProgressSink::Finish(uint64_t size) {
  int err = inner_->Finish(size);
  if (err == 0) {
    report_->bytes_total.store(size, std::memory_order_relaxed);
    report_->bytes_written.store(size, std::memory_order_relaxed);
  }
  return err;
}

ParentIdentitySnapshot::ParentIdentitySnapshot(const ProcessSnapshot& inner, pid_t pid, pid_t ppid,
                                               int nice)
    : inner_(inner), info_(inner.process()) {
  info_.pid = pid;
  info_.ppid = ppid;
  info_.nice = nice;
}

bool ChooseForkForHeadroom(uint64_t limit, uint64_t usage, uint64_t rss_anon, char* reason,
                           size_t reason_size) {
  size_t n = 0;
  if (reason_size == 0) return false;
  reason[0] = '\0';
  if (limit == kUnknownBytes) {
    Append(reason, reason_size, &n, "no cgroup memory limit");
    return true;
  }
  if (usage == kUnknownBytes) {
    Append(reason, reason_size, &n, "cgroup usage unknown");
    return false;
  }
  uint64_t need = rss_anon == kUnknownBytes ? kForkHeadroomFloor : rss_anon / 2;
  if (need < kForkHeadroomFloor) need = kForkHeadroomFloor;
  uint64_t headroom = limit > usage ? limit - usage : 0;
  bool fork = headroom >= need;
  Append(reason, reason_size, &n, "cgroup headroom ");
  AppendMiB(reason, reason_size, &n, headroom);
  Append(reason, reason_size, &n, fork ? " >= " : " < ");
  AppendMiB(reason, reason_size, &n, need);
  Append(reason, reason_size, &n, " needed for copy-on-write");
  return fork;
}

uint64_t ReadCgroupBytes(const char* path) {
  int fd = HANDLE_EINTR(::open(path, O_RDONLY | O_CLOEXEC));
  if (fd < 0) return kUnknownBytes;
  char buf[32];
  ssize_t n = HANDLE_EINTR(::read(fd, buf, sizeof buf));
  ::close(fd);
  if (n <= 0) return kUnknownBytes;
  if (n >= 3 && std::memcmp(buf, "max", 3) == 0) return kUnknownBytes;
  bool ok = false;
  uint64_t v = ParseDecimal(buf, buf + n, &ok);
  if (!ok || v >= (uint64_t{1} << 62)) return kUnknownBytes;  // v1's "unlimited"
  return v;
}

uint64_t ReadSelfRssAnon() {
  int fd = HANDLE_EINTR(::open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  if (fd < 0) return kUnknownBytes;
  char buf[4096];
  size_t len = 0;
  for (;;) {
    ssize_t n = HANDLE_EINTR(::read(fd, buf + len, sizeof buf - len));
    if (n <= 0) break;
    len += static_cast<size_t>(n);
    if (len == sizeof buf) break;
  }
  ::close(fd);
  const char kKey[] = "\nRssAnon:";
  for (size_t i = 0; i + sizeof kKey - 1 < len; ++i) {
    if (std::memcmp(buf + i, kKey, sizeof kKey - 1) != 0) continue;
    bool ok = false;
    uint64_t kb = ParseDecimal(buf + i + sizeof kKey - 1, buf + len, &ok);
    return ok ? kb * 1024 : kUnknownBytes;
  }
  return kUnknownBytes;
}

pid_t RawFork() {
  // Exit signal 0: a "clone child" (waited for with __WALL).
  long r = ::syscall(SYS_clone, 0L, 0L, 0L, 0L, 0L);
  if (r < 0) return -errno;
  return static_cast<pid_t>(r);
}

bool PrepareForkChild(pid_t parent_pid) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS}) {
    ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t all;
  sigfillset(&all);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS}) sigdelset(&all, sig);
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, nullptr, sizeof(uint64_t));
  (void)::prctl(PR_SET_PDEATHSIG, SIGKILL);  // valid arguments: cannot fail
  // The service runs on while the child writes: the writer yields the CPU
  // and the disk to it (a nice value can always be raised; the I/O class
  // stays best-effort, so the write still ends on a busy disk).
  (void)::setpriority(PRIO_PROCESS, 0, kForkWriterNice);
  (void)::syscall(SYS_ioprio_set, kIoprioWhoProcess, 0, kIoprioLowestBestEffort);
  return ::getppid() == parent_pid;
}

namespace {

// The caller's progress callback, kept from throwing through the dump path.
// False: it threw.
bool CallProgress(void (*progress)(void*, uint64_t, uint64_t), void* context, uint64_t written,
                  uint64_t total) noexcept {
  try {
    progress(context, written, total);
    return true;
  } catch (...) {
    return false;
  }
}

// Waits up to `ms` for the child to end (on its pidfd, or in short sleeps).
void Pause(int pidfd, uint64_t ms) {
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    (void)::poll(&p, 1, static_cast<int>(ms));
  } else {  // kernels before 5.3: poll the wait status
    timespec ts{0, static_cast<long>(ms < 5 ? ms : 5) * 1000 * 1000};
    ::nanosleep(&ts, nullptr);
  }
}

// SIGKILL, then reap. The child is ours and not yet reaped: its pid cannot
// have been reused.
void KillAndReap(pid_t pid, int pidfd, int* status) {
  if (pidfd < 0 || ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0) != 0) {
    (void)::kill(pid, SIGKILL);  // the reap below tells whether it died
  }
  uint64_t deadline = NowMs() + kReapAfterKillMs;
  for (;;) {
    pid_t r = ::waitpid(pid, status, __WALL | WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;
    uint64_t now = NowMs();
    if (now >= deadline) return;
    Pause(pidfd, deadline - now < 100 ? deadline - now : 100);
  }
}

}  // namespace

int WaitForkChild(pid_t pid, const ForkReport* report, uint32_t interval_ms,
                  uint32_t stall_timeout_ms, void (*progress)(void*, uint64_t, uint64_t),
                  void* context, int* status) {
  *status = 0;
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  uint64_t now = NowMs();
  uint64_t next = now + interval_ms;
  uint64_t last_bytes = report->bytes_written.load(std::memory_order_relaxed);
  uint64_t last_change = now;
  int err = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, status, __WALL | WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) {
      err = errno;
      break;
    }
    now = NowMs();
    uint64_t bytes = report->bytes_written.load(std::memory_order_relaxed);
    if (bytes != last_bytes) {
      last_bytes = bytes;
      last_change = now;
    } else if (stall_timeout_ms != 0 && now - last_change >= stall_timeout_ms) {
      KillAndReap(pid, pidfd, status);
      err = ETIMEDOUT;
      break;
    }
    if (progress != nullptr && now >= next) {
      if (!CallProgress(progress, context, bytes,
                        report->bytes_total.load(std::memory_order_relaxed))) {
        progress = nullptr;
      }
      next = now + interval_ms;
    }
    uint64_t wait_ms = progress != nullptr ? (next > now ? next - now : 1) : 1000;
    if (stall_timeout_ms != 0) {
      uint64_t stall_at = last_change + stall_timeout_ms;
      uint64_t until_stall = stall_at > now ? stall_at - now : 1;
      if (until_stall < wait_ms) wait_ms = until_stall;
    }
    Pause(pidfd, wait_ms);
  }
  if (pidfd >= 0) ::close(pidfd);
  return err;
}

}  // namespace cppdiag::dump
