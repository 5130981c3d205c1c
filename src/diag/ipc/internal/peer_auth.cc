#include "diag/ipc/internal/peer_auth.h"

#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/io.h"
#include "common/parse.h"
#include "common/scoped_fd.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5; older headers lack it
#endif

namespace cppdiag::ipc {
namespace {

uid_t ReadOverflowUid() {
  auto text = ReadFileToString("/proc/sys/kernel/overflowuid", 64);
  if (!text) return 65534;  // the kernel's default
  while (!text->empty() && (text->back() == '\n' || text->back() == ' ')) text->pop_back();
  auto v = ParseInt(*text, 0, UINT32_MAX);
  return v ? static_cast<uid_t>(*v) : 65534;
}

// A pidfd for the peer of `conn`: the kernel's own reference to the process
// that connected, or (before Linux 6.5) one opened from its pid now.
Result<ScopedFd> PeerPidfd(int conn, pid_t pid) {
  int fd = -1;
  socklen_t len = sizeof fd;
  if (::getsockopt(conn, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) == 0) return ScopedFd(fd);
  if (errno != ENOPROTOOPT) return Error::FromErrno("getsockopt SO_PEERPIDFD");
  ScopedFd opened(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!opened.is_valid()) return Error::FromErrno("pidfd_open");
  return opened;
}

bool Alive(int pidfd) {
  return ::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0 || errno == EPERM;
}

// Whether the peer (pid as this process sees it) is in our user namespace;
// an error when that cannot be established.
Result<bool> InOurUserNamespace(int conn, pid_t pid, const SelfIdentity& self) {
  if (pid <= 0) return Error(ESRCH, "", "its pid is not visible in this pid namespace");
  if (self.userns_ino == 0) return Error(ENOENT, "", "this process's user namespace is unknown");
  char link[32] = {};
  if (::readlink("/proc/self", link, sizeof link - 1) < 0 || std::to_string(::getpid()) != link) {
    return Error(ENOENT, "", "/proc is not this pid namespace's");
  }
  CPPDIAG_ASSIGN_OR_RETURN(ScopedFd pidfd, PeerPidfd(conn, pid));
  std::string ns = "/proc/" + std::to_string(pid) + "/ns/user";
  struct stat st {};
  if (::stat(ns.c_str(), &st) != 0) return Error::FromErrno("stat", ns);
  // Still alive, so the pid was its own all along: not reused for another process.
  if (!Alive(pidfd.get())) return Error(ESRCH, "", "it exited while being checked");
  return st.st_dev == self.userns_dev && st.st_ino == self.userns_ino;
}

}  // namespace

SelfIdentity SelfIdentity::Read() {
  SelfIdentity self;
  self.overflow_uid = ReadOverflowUid();
  struct stat st {};
  if (::stat("/proc/self/ns/user", &st) == 0) {
    self.userns_dev = st.st_dev;
    self.userns_ino = st.st_ino;
  }
  return self;
}

Status AuthorizePeer(int conn, const ucred& cred, const SelfIdentity& self) {
  std::string who = "peer uid " + std::to_string(cred.uid);
  if (cred.uid != 0 && cred.uid != ::geteuid()) {
    return Error(EACCES, "", who + " may not use this process's diagnostic socket");
  }
  if (cred.uid != self.overflow_uid) return OkStatus();
  auto same = InOurUserNamespace(conn, cred.pid, self);
  if (same && *same) return OkStatus();
  return Error(
      EACCES, "",
      who + " is the overflow uid, which every uid unmapped in this user namespace shows as; " +
          (same ? std::string("the peer is in another user namespace")
                : "the peer's user namespace cannot be checked (" + same.error().message() + ")") +
          ": refused");
}

}  // namespace cppdiag::ipc
