// Async-signal-safe: nothing here allocates, locks or uses stdio.
#include "diag/dump/dump_file.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>  // renameat2
#include <cstring>

#include "common/async_safe.h"
#include "common/io.h"

namespace cppdiag::dump {
namespace {

std::atomic<bool> g_no_tmpfile{false};
std::atomic<bool> g_no_openat2{false};

void CloseSlot(std::atomic<int>* fd) {
  int f = fd->exchange(-1, std::memory_order_acq_rel);
  if (f >= 0) ::close(f);
}

// Appends `s` to out[*n..]; false if it does not fit (with its NUL).
bool Append(char* out, size_t size, size_t* n, const char* s, size_t len) {
  if (*n + len + 1 > size) return false;
  std::memcpy(out + *n, s, len);
  *n += len;
  out[*n] = '\0';
  return true;
}

bool AppendNumber(char* out, size_t size, size_t* n, uint64_t v) {
  char digits[kMaxDecimalChars];
  size_t d = FormatDecimal(v, digits, sizeof digits);
  return Append(out, size, n, digits, d);
}

// "/proc/self/fd/<fd>": linkat's way to name an O_TMPFILE inode without
// CAP_DAC_READ_SEARCH (which AT_EMPTY_PATH needs).
void ProcFdPath(int fd, char* out, size_t size) {
  size_t n = 0;
  out[0] = '\0';
  const char kPrefix[] = "/proc/self/fd/";
  Append(out, size, &n, kPrefix, sizeof kPrefix - 1);
  AppendNumber(out, size, &n, static_cast<uint64_t>(fd));
}

bool BadName(const char* name) {
  return name[0] == '\0' || std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0;
}

int OpenBeneathWithOpenat2(int base, const char* dir) {
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    long fd = ::syscall(SYS_openat2, base, dir, &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    // EAGAIN: a concurrent rename during the lookup; retried by the kernel's advice.
    if ((errno != EAGAIN && errno != EINTR) || attempt == 8) return -errno;
  }
}

// Before openat2: one component at a time, none of them a symbolic link.
int OpenBeneathByWalking(int base, const char* dir, DescriptorReserve* reserve) {
  reserve->GiveOne();
  int cur = ::fcntl(base, F_DUPFD_CLOEXEC, 0);
  if (cur < 0) return -errno;
  const char* p = dir;
  while (*p != '\0') {
    const char* end = std::strchr(p, '/');
    size_t len = end != nullptr ? static_cast<size_t>(end - p) : std::strlen(p);
    char part[NAME_MAX + 1];
    if (len > NAME_MAX) {
      ::close(cur);
      return -ENAMETOOLONG;
    }
    std::memcpy(part, p, len);
    part[len] = '\0';
    p += len;
    if (*p == '/') ++p;
    if (len == 0 || std::strcmp(part, ".") == 0) continue;
    if (std::strcmp(part, "..") == 0) {
      ::close(cur);
      return -EXDEV;  // as RESOLVE_BENEATH says it
    }
    reserve->GiveOne();
    // O_PATH | O_NOFOLLOW opens a link itself: what was opened is checked,
    // not the name again (it may have changed since).
    int next = HANDLE_EINTR(::openat(cur, part, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    int err = errno;
    struct stat st;
    if (next >= 0 && ::fstat(next, &st) == 0 && !S_ISDIR(st.st_mode)) {
      err = S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;  // ELOOP, as openat2 says it
      ::close(next);
      next = -1;
    }
    ::close(cur);
    if (next < 0) return -err;
    cur = next;
  }
  return cur;
}

int OpenTempByName(DumpFile* file) {
  int dir = file->dir_fd.load(std::memory_order_relaxed);
  size_t n = 0;
  file->temp_name[0] = '\0';
  const char kSuffix[] = ".tmp-";
  if (!Append(file->temp_name, sizeof file->temp_name, &n, file->name, std::strlen(file->name)) ||
      !Append(file->temp_name, sizeof file->temp_name, &n, kSuffix, sizeof kSuffix - 1) ||
      !AppendNumber(file->temp_name, sizeof file->temp_name, &n,
                    static_cast<uint64_t>(CurrentPid()))) {
    file->temp_name[0] = '\0';
    return -ENAMETOOLONG;
  }
  int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  int fd = HANDLE_EINTR(::openat(dir, file->temp_name, flags, 0600));
  if (fd < 0 && errno == EEXIST) {
    // Left by an earlier process with the same pid: O_EXCL and O_NOFOLLOW
    // still refuse a symlink planted in its place.
    ::unlinkat(dir, file->temp_name, 0);
    fd = HANDLE_EINTR(::openat(dir, file->temp_name, flags, 0600));
  }
  if (fd < 0) {
    int err = errno;
    file->temp_name[0] = '\0';
    return -err;
  }
  return fd;
}

// The fallback's publication: no replacing unless asked. NFS has no
// RENAME_NOREPLACE (EINVAL): a hard link gives the same answer there.
int RenameTemp(int dir, const char* temp, const char* name, bool replace, const char** failed) {
  *failed = "rename";
  if (replace) return ::renameat(dir, temp, dir, name) == 0 ? 0 : errno;
  if (::renameat2(dir, temp, dir, name, RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL) return errno;
  *failed = "link";
  if (::linkat(dir, temp, dir, name, 0) != 0) return errno;
  ::unlinkat(dir, temp, 0);
  return 0;
}

// The O_TMPFILE publication. Replacing links to a temporary name first: a
// rename is the only way over an existing file.
int LinkTmpfile(DumpFile* file, const char* name, bool replace, const char** failed) {
  int dir = file->dir_fd.load(std::memory_order_relaxed);
  char proc[32];
  ProcFdPath(file->fd.load(std::memory_order_relaxed), proc, sizeof proc);
  *failed = "link";
  if (!replace) return ::linkat(AT_FDCWD, proc, dir, name, AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
  size_t n = 0;
  char temp[NAME_MAX + 1];
  const char kSuffix[] = ".tmp-";
  if (!Append(temp, sizeof temp, &n, name, std::strlen(name)) ||
      !Append(temp, sizeof temp, &n, kSuffix, sizeof kSuffix - 1) ||
      !AppendNumber(temp, sizeof temp, &n, static_cast<uint64_t>(CurrentPid()))) {
    return ENAMETOOLONG;
  }
  ::unlinkat(dir, temp, 0);  // a stale one of an earlier process with our pid
  if (::linkat(AT_FDCWD, proc, dir, temp, AT_SYMLINK_FOLLOW) != 0) return errno;
  *failed = "rename";
  if (::renameat(dir, temp, dir, name) == 0) return 0;
  int err = errno;
  ::unlinkat(dir, temp, 0);
  return err;
}

// Names the file, trying ".1"... when asked.
int Publish(DumpFile* file, int dir, bool tmpfile, bool numbered, bool replace, char* path,
            size_t path_size, const char** failed_call) {
  auto publish = [&](const char* name) {
    return tmpfile ? LinkTmpfile(file, name, replace, failed_call)
                   : RenameTemp(dir, file->temp_name, name, replace, failed_call);
  };
  int err = publish(file->name);
  if (err == 0 || err != EEXIST || !numbered || replace) {
    if (err == 0) file->temp_name[0] = '\0';
    return err;
  }
  size_t name_len = std::strlen(file->name);
  size_t path_len = std::strlen(path);
  for (char n = '1'; n <= '9'; ++n) {
    if (name_len + 3 > sizeof file->name || path_len + 3 > path_size) return ENAMETOOLONG;
    const char suffix[3] = {'.', n, '\0'};
    std::memcpy(file->name + name_len, suffix, 3);
    err = publish(file->name);
    if (err == 0) {
      std::memcpy(path + path_len, suffix, 3);
      file->temp_name[0] = '\0';
      return 0;
    }
    if (err != EEXIST) break;
  }
  file->name[name_len] = '\0';
  return err;
}

}  // namespace

void DescriptorReserve::Fill() {
  for (auto& fd : fds) {
    if (fd.load(std::memory_order_relaxed) >= 0) continue;
    int f = HANDLE_EINTR(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (f < 0) return;
    fd.store(f, std::memory_order_release);
  }
}

void DescriptorReserve::GiveOne() {
  for (auto& fd : fds) {
    if (fd.load(std::memory_order_relaxed) >= 0) {
      CloseSlot(&fd);
      return;
    }
  }
}

void DescriptorReserve::CloseAll() {
  for (auto& fd : fds) CloseSlot(&fd);
}

void DumpFile::CloseDescriptors() {
  CloseSlot(&fd);
  CloseSlot(&dir_fd);
}

int OpenDumpDirectory(int beneath_fd, const char* path, DescriptorReserve* reserve,
                      DumpFile* file) {
  file->name[0] = file->temp_name[0] = '\0';
  const char* slash = std::strrchr(path, '/');
  const char* name = slash != nullptr ? slash + 1 : path;
  if (std::strlen(name) > NAME_MAX) return ENAMETOOLONG;
  if (BadName(name)) return EINVAL;
  std::memcpy(file->name, name, std::strlen(name) + 1);
  char dir[PATH_MAX];
  size_t dir_len = slash != nullptr ? static_cast<size_t>(slash - path) : 0;
  if (dir_len >= sizeof dir) return ENAMETOOLONG;
  std::memcpy(dir, path, dir_len);
  dir[dir_len] = '\0';
  if (dir_len == 0) std::memcpy(dir, slash == path ? "/" : ".", 2);

  int fd;
  if (beneath_fd < 0) {
    reserve->GiveOne();
    fd = HANDLE_EINTR(::open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (fd < 0) fd = -errno;
  } else {
    if (path[0] == '/') return EINVAL;
    fd = -ENOSYS;
    if (!g_no_openat2.load(std::memory_order_relaxed)) {
      reserve->GiveOne();
      fd = OpenBeneathWithOpenat2(beneath_fd, dir);
    }
    // ENOSYS: before Linux 5.6; EPERM: a seccomp filter older than openat2.
    if (fd == -ENOSYS || fd == -EPERM) fd = OpenBeneathByWalking(beneath_fd, dir, reserve);
  }
  if (fd < 0) return -fd;
  file->dir_fd.store(fd, std::memory_order_release);
  return 0;
}

int CreateDumpFile(DescriptorReserve* reserve, DumpFile* file) {
  int dir = file->dir_fd.load(std::memory_order_relaxed);
  file->temp_name[0] = '\0';
  reserve->GiveOne();
  int fd = -EOPNOTSUPP;
  if (!g_no_tmpfile.load(std::memory_order_relaxed)) {
    fd = HANDLE_EINTR(::openat(dir, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600));
    if (fd < 0) fd = -errno;
    if (fd >= 0) {
      // linkat names it through /proc: without /proc, use the fallback.
      char proc[32], target[8];
      ProcFdPath(fd, proc, sizeof proc);
      if (::readlink(proc, target, sizeof target) < 0) {
        ::close(fd);
        fd = -EOPNOTSUPP;
      }
    }
  }
  // EOPNOTSUPP: no O_TMPFILE on this filesystem; EISDIR: a kernel before 3.11.
  if (fd == -EOPNOTSUPP || fd == -EISDIR) fd = OpenTempByName(file);
  if (fd < 0) return -fd;
  if (::fchmod(fd, 0600) != 0) {  // whatever the umask
    int err = errno;
    ::close(fd);
    if (file->temp_name[0] != '\0') ::unlinkat(dir, file->temp_name, 0);
    file->temp_name[0] = '\0';
    return err;
  }
  file->fd.store(fd, std::memory_order_release);
  return 0;
}

int PublishDumpFile(DumpFile* file, bool numbered, bool replace, char* path, size_t path_size,
                    const char** failed_call) {
  int dir = file->dir_fd.load(std::memory_order_relaxed);
  bool tmpfile = file->temp_name[0] == '\0';
  // NFS (which has no O_TMPFILE) reports write errors at close: the
  // fallback's file is closed before it gets its name. An O_TMPFILE inode is
  // named through its descriptor, after its data was fsynced.
  if (!tmpfile) {
    int fd = file->fd.exchange(-1, std::memory_order_acq_rel);
    if (::close(fd) != 0) {
      *failed_call = "close";
      return errno;
    }
  }
  int err = Publish(file, dir, tmpfile, numbered, replace, path, path_size, failed_call);
  CloseSlot(&file->fd);
  return err;
}

void DiscardDumpFile(DumpFile* file) {
  if (file->temp_name[0] != '\0') {
    ::unlinkat(file->dir_fd.load(std::memory_order_relaxed), file->temp_name, 0);
    file->temp_name[0] = '\0';
  }
  file->CloseDescriptors();
}

void SyncDumpDirectory(const DumpFile& file) {
  int fd = HANDLE_EINTR(::openat(file.dir_fd.load(std::memory_order_relaxed), ".",
                                 O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd >= 0) {
    (void)::fsync(fd);  // the rename's durability: best effort, the file itself is synced
    ::close(fd);
  }
}

void SetDumpFileFallbacksForTesting(bool no_tmpfile, bool no_openat2) {
  g_no_tmpfile.store(no_tmpfile);
  g_no_openat2.store(no_openat2);
}

}  // namespace cppdiag::dump
