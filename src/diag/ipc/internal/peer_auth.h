// Who may use the diagnostic socket: root, or a peer of this process's
// effective uid (SO_PEERCRED, as the kernel reports it in this process's user
// namespace).
//
// A peer whose uid is not mapped in this user namespace shows as the
// overflow uid (/proc/sys/kernel/overflowuid, 65534), which is also the uid
// many services run as ("nobody", runAsUser: 65534): such a target would
// accept every unmapped peer. So a peer that shows as the overflow uid is
// served only when it is in this process's own user namespace (its
// /proc/<pid>/ns/user is ours), and refused when that cannot be established
// (pid 0: a peer in another pid namespace; /proc not ours; no access to its
// /proc entry). The pid is pinned with a pidfd (SO_PEERPIDFD, Linux 6.5+;
// pidfd_open before that) and checked alive after the lookup, so a peer that
// exits while it is checked cannot lend its pid to another process. (Before
// 6.5, a peer that exits before pidfd_open and whose pid is reused at once
// is the one race left.)
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include "common/status.h"

namespace cppdiag::ipc {

// What the check needs of this process, read once at start (a threaded
// process cannot change its user namespace).
struct SelfIdentity {
  uid_t overflow_uid = 65534;
  dev_t userns_dev = 0;  // stat of /proc/self/ns/user; 0 and 0 when unknown
  ino_t userns_ino = 0;
  static SelfIdentity Read();
};

// OK when the peer on `conn`, with credentials `cred` (SO_PEERCRED), may
// use the socket now; otherwise EACCES with a one-line reason for the reply.
Status AuthorizePeer(int conn, const ucred& cred, const SelfIdentity& self);

}  // namespace cppdiag::ipc
