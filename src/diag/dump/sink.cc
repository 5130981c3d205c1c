// FileSink is async-signal-safe: no allocation, no locks, no stdio.
#include "diag/dump/sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/io.h"

namespace cppdiag::dump {

FileSink::FileSink(int fd, uint8_t* buffer, size_t buffer_size, uint64_t writeback_bytes)
    : fd_(fd), buffer_(buffer), buffer_size_(buffer_size), writeback_bytes_(writeback_bytes) {}

int FileSink::PwriteAll(const void* data, size_t len, uint64_t at) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = HANDLE_EINTR(::pwrite(fd_, p, len, static_cast<off_t>(at)));
    if (n < 0) {
      failed_call_ = "pwrite";
      return errno;
    }
    if (n == 0) {
      failed_call_ = "pwrite";
      return ENOSPC;
    }
    p += n;
    at += static_cast<uint64_t>(n);
    len -= static_cast<size_t>(n);
  }
  return 0;
}

int FileSink::Flush() {
  if (buffered_ > 0) {
    if (int err = PwriteAll(buffer_, buffered_, buffer_start_)) return err;
    buffered_ = 0;
  }
  buffer_start_ = offset_;
  Writeback();
  return 0;
}

// Called with nothing buffered: everything before offset_ is in the file.
void FileSink::Writeback() {
  if (writeback_bytes_ == 0 || offset_ - writeback_start_ < writeback_bytes_) return;
  // Start writing the new chunk, then wait for the previous one and drop it
  // from the page cache. Errors are not fatal here: fsync reports them.
  (void)::sync_file_range(fd_, static_cast<off_t>(writeback_start_),
                          static_cast<off_t>(offset_ - writeback_start_), SYNC_FILE_RANGE_WRITE);
  if (previous_chunk_end_ > previous_chunk_start_) {
    off_t start = static_cast<off_t>(previous_chunk_start_);
    off_t len = static_cast<off_t>(previous_chunk_end_ - previous_chunk_start_);
    (void)::sync_file_range(
        fd_, start, len,
        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    (void)::posix_fadvise(fd_, start, len, POSIX_FADV_DONTNEED);
  }
  previous_chunk_start_ = writeback_start_;
  previous_chunk_end_ = offset_;
  writeback_start_ = offset_;
}

int FileSink::Write(const void* data, size_t len) {
  if (len >= buffer_size_ / 2) {
    if (int err = Flush()) return err;
    if (int err = PwriteAll(data, len, offset_)) return err;
    offset_ += len;
    return Flush();
  }
  if (buffered_ + len > buffer_size_) {
    if (int err = Flush()) return err;
  }
  std::memcpy(buffer_ + buffered_, data, len);
  buffered_ += len;
  offset_ += len;
  return 0;
}

int FileSink::Skip(uint64_t len) {
  if (int err = Flush()) return err;
  offset_ += len;
  buffer_start_ = offset_;
  return 0;
}

int FileSink::Finish(uint64_t size) {
  if (int err = Flush()) return err;
  if (HANDLE_EINTR(::ftruncate(fd_, static_cast<off_t>(size))) != 0) {
    failed_call_ = "ftruncate";
    return errno;
  }
  offset_ = size;
  if (::fsync(fd_) != 0) {
    failed_call_ = "fsync";
    return errno;
  }
  (void)::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);
  return 0;
}

int MemorySink::Write(const void* data, size_t len) {
  if (data_.size() + len > limit_) return ENOSPC;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  data_.insert(data_.end(), p, p + len);
  written_ += len;
  return 0;
}

int MemorySink::Skip(uint64_t len) {
  data_.resize(data_.size() + len, 0);
  skipped_ += len;
  return 0;
}

int MemorySink::Finish(uint64_t size) {
  data_.resize(size, 0);
  finished_ = true;
  return 0;
}

}  // namespace cppdiag::dump
