#include "cli/target_root.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "common/io.h"

namespace cppdiag::cli {
namespace {

std::atomic<bool> force_walk{false};

constexpr int kMaxLinks = 40;  // as the kernel's own limit

std::vector<std::string> Components(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string c = path.substr(start, end - start);
    if (!c.empty() && c != ".") out.push_back(std::move(c));
    start = end + 1;
  }
  return out;
}

// The kernel resolves: openat2(2) with the target's root as "/" (absolute
// links and ".." stay below it) and no magic links. -1 with errno.
int Openat2InRoot(int root, const std::string& path, LastLink last) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC | (last == LastLink::kRefuse ? O_NOFOLLOW : 0);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(
      HANDLE_EINTR(::syscall(SYS_openat2, root, path.c_str(), &how, sizeof how)));
}

// The same by hand, one component at a time, each reached with
// O_PATH | O_NOFOLLOW: a link's text is spliced into what is left (an
// absolute one restarts at the root; a magic link counts by its text, so it
// too stays inside), and ".." pops what was walked, never past the root.
Result<ScopedFd> WalkInRoot(int root, const std::string& path, LastLink last) {
  std::vector<std::string> todo = Components(path);
  std::reverse(todo.begin(), todo.end());
  std::vector<ScopedFd> walked;  // directories below the root
  int links = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.back());
    todo.pop_back();
    if (c == "..") {
      if (!walked.empty()) walked.pop_back();
      continue;
    }
    int dir = walked.empty() ? root : walked.back().get();
    ScopedFd fd(HANDLE_EINTR(::openat(dir, c.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC)));
    if (!fd.is_valid()) return Error::FromErrno("openat", path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error::FromErrno("fstat", path);
    bool is_last = todo.empty();
    if (is_last && (!S_ISLNK(st.st_mode) || last == LastLink::kRefuse)) {
      return fd;  // the caller checks what it is
    }
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxLinks) return Error(ELOOP, "openat", path);
      char target[PATH_MAX];
      ssize_t n = ::readlinkat(fd.get(), "", target, sizeof target);
      if (n < 0) return Error::FromErrno("readlinkat", path);
      if (static_cast<size_t>(n) >= sizeof target) return Error(ENAMETOOLONG, "readlinkat", path);
      std::string link(target, static_cast<size_t>(n));
      if (link.front() == '/') walked.clear();
      std::vector<std::string> more = Components(link);
      todo.insert(todo.end(), more.rbegin(), more.rend());
      continue;
    }
    if (!S_ISDIR(st.st_mode)) return Error(ENOTDIR, "openat", path);
    walked.push_back(std::move(fd));
  }
  return Error(EISDIR, "open", path);  // the root itself
}

// `path` under `root` with O_PATH (no FIFO or device is opened by it),
// checked to be a regular file.
Result<ScopedFd> ReachRegularFile(int root, const std::string& path, LastLink last) {
  ScopedFd fd;
  if (!force_walk.load(std::memory_order_relaxed)) {
    fd.reset(Openat2InRoot(root, path, last));
    // No openat2 (before Linux 5.6) or a seccomp profile that refuses it.
    if (!fd.is_valid() && errno != ENOSYS && errno != EPERM) {
      return Error::FromErrno("openat2", path);
    }
  }
  if (!fd.is_valid()) {
    CPPDIAG_ASSIGN_OR_RETURN(fd, WalkInRoot(root, path, last));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error::FromErrno("fstat", path);
  if (S_ISLNK(st.st_mode)) return Error(ELOOP, "open", path + " (a symbolic link; not followed)");
  if (!S_ISREG(st.st_mode)) return Error(EINVAL, "open", path + " (not a regular file)");
  return fd;
}

// Opening /proc/self/fd/N of an O_PATH descriptor opens that very inode
// again, for reading: nothing is looked up by name a second time.
std::string ReopenPath(const ScopedFd& fd) { return "/proc/self/fd/" + std::to_string(fd.get()); }

}  // namespace

Result<TargetRoot> TargetRoot::Open(const std::string& dir) {
  CPPDIAG_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(dir, O_PATH | O_DIRECTORY));
  return TargetRoot(std::move(fd));
}

Result<ScopedFd> TargetRoot::OpenRegularFile(const std::string& path, LastLink last) const {
  CPPDIAG_ASSIGN_OR_RETURN(ScopedFd reached, ReachRegularFile(dir_.get(), path, last));
  return OpenFile(ReopenPath(reached), O_RDONLY | O_NONBLOCK | O_NOCTTY);
}

Result<std::string> TargetRoot::ReadSmallFile(const std::string& path, size_t max_bytes,
                                              LastLink last) const {
  CPPDIAG_ASSIGN_OR_RETURN(ScopedFd reached, ReachRegularFile(dir_.get(), path, last));
  auto text = ReadFileToString(ReopenPath(reached), max_bytes);
  if (!text) return Error(text.error().code(), "read", path);
  return text;
}

void TargetRoot::ForceComponentWalkForTesting(bool force) { force_walk = force; }

}  // namespace cppdiag::cli
