// Where the core writer's bytes go: a file (FileSink) or memory (MemorySink,
// for unit tests). A sink is written front to back; Skip() moves past bytes
// that are all zero without storing them, so a FileSink leaves a hole (a
// sparse file) and a MemorySink counts them.
//
// FileSink is async-signal-safe (no allocation, no locks, no stdio): it works
// in a caller-provided buffer and uses only pwrite, ftruncate, fsync,
// sync_file_range and posix_fadvise. MemorySink allocates and is for tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cppdiag::dump {

class Sink {
 public:
  virtual ~Sink() = default;
  // Appends `len` bytes. Returns 0 or an errno value.
  virtual int Write(const void* data, size_t len) = 0;
  // Appends `len` zero bytes without storing them. Returns 0 or an errno value.
  virtual int Skip(uint64_t len) = 0;
  // Bytes written or skipped so far.
  virtual uint64_t offset() const = 0;
  // Makes the output exactly `size` bytes (zero-extended past offset()) and
  // flushes it. Returns 0 or an errno value.
  virtual int Finish(uint64_t size) = 0;
};

// Writes to a descriptor open for writing at offset 0. Small writes are
// gathered in `buffer`; large ones go straight to the file. Dirty page cache is
// bounded: every `writeback_bytes`, the sink starts writeback of what it wrote
// since, waits for the previous chunk and drops it from the page cache
// (sync_file_range + POSIX_FADV_DONTNEED), so a dump written from a
// memory-limited cgroup keeps at most about two chunks dirty (the page cache
// is charged to the cgroup). Finish() extends the file to its size and fsyncs.
class FileSink : public Sink {
 public:
  FileSink(int fd, uint8_t* buffer, size_t buffer_size, uint64_t writeback_bytes = 8 << 20);
  ~FileSink() override = default;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  int Write(const void* data, size_t len) override;
  int Skip(uint64_t len) override;
  uint64_t offset() const override { return offset_; }
  int Finish(uint64_t size) override;

  // The name of the call that failed last ("pwrite", "ftruncate", "fsync").
  const char* failed_call() const { return failed_call_; }

 private:
  int Flush();
  int PwriteAll(const void* data, size_t len, uint64_t at);
  void Writeback();

  int fd_;
  uint8_t* buffer_;
  size_t buffer_size_;
  size_t buffered_ = 0;  // bytes in buffer_, destined for [buffer_start_, ...)
  uint64_t buffer_start_ = 0;
  uint64_t offset_ = 0;
  uint64_t writeback_bytes_;
  uint64_t writeback_start_ = 0;  // start of the chunk not yet handed to writeback
  uint64_t previous_chunk_start_ = 0;
  uint64_t previous_chunk_end_ = 0;
  const char* failed_call_ = "";
};

// Keeps the output in memory; skipped bytes are stored as zeros and counted.
class MemorySink : public Sink {
 public:
  // `limit`: Write fails with ENOSPC past this many bytes (to test failures).
  explicit MemorySink(uint64_t limit = UINT64_MAX) : limit_(limit) {}

  int Write(const void* data, size_t len) override;
  int Skip(uint64_t len) override;
  uint64_t offset() const override { return data_.size(); }
  int Finish(uint64_t size) override;

  const std::vector<uint8_t>& data() const { return data_; }
  uint64_t skipped_bytes() const { return skipped_; }
  uint64_t written_bytes() const { return written_; }
  bool finished() const { return finished_; }

 private:
  std::vector<uint8_t> data_;
  uint64_t limit_;
  uint64_t skipped_ = 0;
  uint64_t written_ = 0;
  bool finished_ = false;
};

}  // namespace cppdiag::dump
