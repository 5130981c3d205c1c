// The dump file: nothing carries its name before it is complete, and nothing
// is created outside the directory it was meant for.
//
//   - The directory is opened once (O_PATH) and every later step is relative
//     to that descriptor: by path for the crash handler's and the watchdog's
//     name template (the operator's own path: symlinks in it are followed),
//     or beneath a directory descriptor for socket requests (confined to
//     CPPDIAG_DUMP_DIR): openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
//     or, where openat2 is missing (Linux < 5.6, or a seccomp filter that
//     refuses it), a walk of the components with O_NOFOLLOW | O_DIRECTORY.
//   - The file is an unnamed O_TMPFILE inode in that directory, mode 0600
//     whatever the umask, and gets its name with linkat(/proc/self/fd/N) once
//     complete and fsynced: a process killed mid-dump (OOM killer, liveness
//     probe) leaves nothing. linkat never replaces: a taken name fails with
//     EEXIST (replacing, when asked, is a link to a temporary name and a
//     rename over the old file).
//   - Where the filesystem has no O_TMPFILE (NFS, CIFS/SMB, vfat, exfat,
//     9p, FUSE and overlayfs on older kernels), or /proc is not mounted: the
//     older scheme, `<name>.tmp-<pid>` created O_EXCL | O_NOFOLLOW and renamed
//     when complete; a kill mid-dump leaves that temporary file.
//   - Every open first gives up one descriptor of a reserve held on
//     /dev/null, so a process out of descriptors (EMFILE) can still dump.
//
// Internal to the self-dump. Async-signal-safe: no allocation, no locks, no
// stdio.
#pragma once

#include <limits.h>

#include <atomic>
#include <cstddef>

namespace cppdiag::dump {

// Descriptors held on /dev/null and given up one at a time, just before an
// open on the dump path.
struct DescriptorReserve {
  // A directory walk (2), the file (1), /proc/self/mem and pagemap.
  static constexpr int kCount = 4;
  std::atomic<int> fds[kCount] = {-1, -1, -1, -1};

  void Fill();     // takes back what was given up
  void GiveOne();  // closes one, if any is held
  void CloseAll();
};

// A dump file being written. The descriptors are atomic so that a forked
// child can close what another thread had open at fork time.
struct DumpFile {
  std::atomic<int> dir_fd{-1};  // the directory it goes in (O_PATH)
  std::atomic<int> fd{-1};      // open for writing
  char name[NAME_MAX + 1] = {};
  char temp_name[NAME_MAX + 1] = {};  // the fallback's visible name; "" with O_TMPFILE

  // Closes both descriptors (nothing is removed).
  void CloseDescriptors();
};

// Opens the directory of `path` into `file->dir_fd` and keeps its last
// component in `file->name`. `beneath_fd` >= 0: `path` is relative and is
// resolved beneath that directory with no ".." and no symbolic link (ELOOP
// for a symbolic link, EXDEV for an escape, EINVAL for an absolute path or
// a bad name). `beneath_fd` < 0: `path` is opened as given. Returns 0 or an
// errno value.
int OpenDumpDirectory(int beneath_fd, const char* path, DescriptorReserve* reserve, DumpFile* file);

// Creates the unnamed file (or, without O_TMPFILE, the temporary one) in the
// opened directory, mode 0600. Returns 0 or an errno value.
int CreateDumpFile(DescriptorReserve* reserve, DumpFile* file);

// Gives the complete file its name. Without `replace`, a taken name fails
// with EEXIST, unless `numbered`: then ".1" ... ".9" are tried and the one
// used is appended to `file->name` and to `path` (NUL-terminated, `path_size`
// bytes). `*failed_call` names the call that failed. Returns 0 or an errno
// value; the file descriptor stays open (close it to see write errors).
int PublishDumpFile(DumpFile* file, bool numbered, bool replace, char* path, size_t path_size,
                    const char** failed_call);

// After a failure: removes the fallback's temporary file and closes both
// descriptors. An O_TMPFILE inode goes with its last descriptor.
void DiscardDumpFile(DumpFile* file);

// fsync of the directory, so the new name survives a crash of the machine.
void SyncDumpDirectory(const DumpFile& file);

// For tests: behave as on a filesystem without O_TMPFILE, or a kernel
// without openat2.
void SetDumpFileFallbacksForTesting(bool no_tmpfile, bool no_openat2);

}  // namespace cppdiag::dump
