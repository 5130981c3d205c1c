// The leaks themselves: several realistic shapes of memory that a service
// keeps by mistake. Each pattern leaks from its own non-inlined function whose
// name contains the pattern's name (LeakIntoVector, LeakIntoCache,
// LeakThroughCycle, LeakIntoString), so a backtrace, a heap profile or a core
// dump names the culprit plainly.
//
// Every leaked byte is written (not just reserved), so RSS really grows.
//
// Out of memory: when an allocation fails (the heap hard limit, RLIMIT_AS, or
// a real shortage), the pattern's function catches std::bad_alloc itself, logs
//   OutOfMemory caught! Application is likely to crash soon. <what()>
// and rethrows. Nothing above it catches, so the leak thread ends the process
// through std::terminate (SIGABRT) with the pattern's frame still on the
// crashing stack, where a crash dump shows it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace leakapp {

enum class LeakPattern {
  kVector,  // an ever-growing std::vector of buffers
  kCache,   // a response cache keyed by request id that never evicts
  kCycle,   // shared_ptr nodes in reference cycles, dropped by every owner
  kString,  // one std::string that grows by concatenation
};

inline constexpr LeakPattern kAllLeakPatterns[] = {LeakPattern::kVector, LeakPattern::kCache,
                                                   LeakPattern::kCycle, LeakPattern::kString};

// "vector", "cache", "cycle", "string".
const char* LeakPatternName(LeakPattern pattern);
// The inverse of LeakPatternName; nullopt for an unknown name.
std::optional<LeakPattern> ParseLeakPattern(std::string_view name);

// A node of the cycle pattern: `peer` points at the other node of its cycle.
struct CycleNode {
  std::shared_ptr<CycleNode> peer;
  std::vector<char> payload;
};

// A cached response of the cache pattern: a polymorphic class (as a real
// cache's entries often are), so `dump analyze`'s `heap types` names each one
// by its vtable (leakapp::CacheEntry).
class CacheEntry {
 public:
  CacheEntry(uint64_t request_id, std::string body);
  virtual ~CacheEntry();
  uint64_t request_id() const { return request_id_; }
  const std::string& body() const { return body_; }

 private:
  uint64_t request_id_;
  std::string body_;
};

using ResponseCache = std::unordered_map<std::string, std::unique_ptr<CacheEntry>>;

// Everything leaked so far, by pattern. Not thread-safe: LeakEngine calls it
// from one thread at a time.
class LeakedMemory {
 public:
  // One round of `pattern`: allocates `bytes`, writes every page, keeps it.
  // Out of memory crashes the process (see the top of this file).
  void Leak(LeakPattern pattern, size_t bytes);

  // Frees everything (breaking the cycles first) and returns free memory to
  // the OS with malloc_trim(0).
  void ReleaseAll();

 private:
  std::vector<std::vector<char>> vector_buffers_;
  ResponseCache response_cache_;
  uint64_t next_request_id_ = 1;
  // Weak only: the cycles own themselves. Kept so ReleaseAll can break them,
  // the way a debugger session would after finding them.
  std::vector<std::weak_ptr<CycleNode>> cycles_;
  std::string session_log_;
};

// The leaking functions, one per pattern. Each catches std::bad_alloc, logs it
// with LogOutOfMemory, and rethrows.
[[gnu::noinline]] void LeakIntoVector(std::vector<std::vector<char>>& buffers, size_t bytes);
[[gnu::noinline]] void LeakIntoCache(ResponseCache& cache, uint64_t request_id, size_t bytes);
[[gnu::noinline]] void LeakThroughCycle(std::vector<std::weak_ptr<CycleNode>>& cycles,
                                        size_t bytes);
[[gnu::noinline]] void LeakIntoString(std::string& session_log, size_t bytes);

// Logs "OutOfMemory caught! Application is likely to crash soon." with the
// exception's what() and the pattern, and flushes. If the logger itself cannot
// allocate, writes the line with the raw (non-allocating) logger instead.
void LogOutOfMemory(LeakPattern pattern, const std::bad_alloc& error) noexcept;

}  // namespace leakapp
