// Opening files a target names, as the target sees them, without trusting
// the target: the CLI often runs as root, and a path it was given by a
// target (a mapping's file, its service-account mount) may be a FIFO (an
// open that never returns), a device (an open with side effects), or a
// symbolic link planted to lead out of the target's filesystem.
//
//   auto root = TargetRoot::Open("/proc/1234/root");
//   if (!root) ...;
//   auto fd = root->OpenRegularFile("/usr/lib/libfoo.so");   // or an error
//   auto ns = root->ReadSmallFile("/var/run/secrets/.../namespace", 4096);
#pragma once

#include <cstddef>
#include <string>

#include "common/scoped_fd.h"
#include "common/status.h"

namespace cppdiag::cli {

// Whether a symbolic link as the path's last component is followed (inside
// the root, as every other link): a Kubernetes service-account file is one
// (namespace -> ..data/namespace); a mapping's path never is, as the kernel
// shows it resolved.
enum class LastLink { kRefuse, kFollow };

class TargetRoot {
 public:
  // `dir` stands for the target's "/": "/proc/<pid>/root", or "/" for paths
  // in this tool's own filesystem.
  static Result<TargetRoot> Open(const std::string& dir);

  // Opens `path` (absolute or not, as the target names it) for reading:
  //   - resolved inside the root: ".." and symbolic links (absolute ones
  //     included) cannot leave it, and /proc's magic links are not followed
  //     (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS; on kernels or
  //     seccomp profiles without openat2, an equivalent walk one component
  //     at a time);
  //   - a symbolic link as the last component is refused (ELOOP), or with
  //     LastLink::kFollow followed as the others;
  //   - anything but a regular file is refused (EINVAL) before it is opened
  //     for reading (it is first reached with O_PATH, which opens no FIFO
  //     or device), and the descriptor is O_NONBLOCK and O_CLOEXEC.
  Result<ScopedFd> OpenRegularFile(const std::string& path,
                                   LastLink last = LastLink::kRefuse) const;

  // The whole of a small regular file, opened as above; EFBIG past
  // `max_bytes`.
  Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes,
                                    LastLink last = LastLink::kRefuse) const;

  // For tests: resolve by the component walk even where openat2 works.
  static void ForceComponentWalkForTesting(bool force);

 private:
  explicit TargetRoot(ScopedFd dir) : dir_(std::move(dir)) {}
  ScopedFd dir_;  // O_PATH | O_DIRECTORY
};

}  // namespace cppdiag::cli
