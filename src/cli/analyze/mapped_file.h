// A read-only, private mapping of a whole regular file, for readers of large
// untrusted files (cores): nothing is copied, pages are read on first touch.
//
// Opening never blocks and never follows a symlink in the last component:
// O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC, then fstat, and only a regular,
// non-empty file is mapped (a FIFO, a device, a directory or a socket is
// refused before any read, so none of them can hang the reader).
//
// A mapped file that another process truncates while it is read raises
// SIGBUS on the next touch of a page past the new end. A program that maps
// untrusted files calls InstallTruncationGuard() once: a fault inside a live
// MappedFile then prints one line naming the file and exits with status 1
// instead of dumping core; any other SIGBUS keeps its default action.
//
//   CPPDIAG_RETURN_IF_ERROR(InstallTruncationGuard());
//   CPPDIAG_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open("core.123"));
//   std::span<const uint8_t> bytes = file.bytes();
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/status.h"

namespace cppdiag::cli::analyze {

class MappedFile {
 public:
  // Errors: the open, fstat or mmap errno ("open core: No such file or
  // directory"), or "<path>: a symbolic link (...)", "<path>: not a regular
  // file (a FIFO)", "<path>: empty file".
  static Result<MappedFile> Open(const std::string& path);

  MappedFile() = default;  // maps nothing
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  MappedFile(const uint8_t* data, size_t size, int guard_slot)
      : data_(data), size_(size), guard_slot_(guard_slot) {}
  void Reset();

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  int guard_slot_ = -1;  // index in the truncation guard's table, -1: not watched
};

// Installs the SIGBUS handler described above (idempotent). Mappings opened
// before the call are watched too.
Status InstallTruncationGuard();

}  // namespace cppdiag::cli::analyze
