#include "leakapp/leak_patterns.h"

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <utility>

#include "common/raw_log.h"

namespace leakapp {

const char* LeakPatternName(LeakPattern pattern) {
  switch (pattern) {
    case LeakPattern::kVector:
      return "vector";
    case LeakPattern::kCache:
      return "cache";
    case LeakPattern::kCycle:
      return "cycle";
    case LeakPattern::kString:
      return "string";
  }
  return "unknown";
}

std::optional<LeakPattern> ParseLeakPattern(std::string_view name) {
  for (LeakPattern p : kAllLeakPatterns) {
    if (name == LeakPatternName(p)) return p;
  }
  return std::nullopt;
}

void LogOutOfMemory(LeakPattern pattern, const std::bad_alloc& error) noexcept {
  static constexpr const char kMessage[] =
      "OutOfMemory caught! Application is likely to crash soon.";
  try {
    spdlog::critical("{} {} (pattern {})", kMessage, error.what(), LeakPatternName(pattern));
    spdlog::default_logger()->flush();
  } catch (...) {
    // The logger could not allocate either: say it without allocating.
    cppdiag::RawLine line;
    line.Add(kMessage).Add(" ").Add(error.what()).Add(" (pattern ").Add(LeakPatternName(pattern));
    line.Add(")").WriteTo(STDOUT_FILENO);
  }
}

// The catch blocks below are deliberately inside each pattern's function and
// rethrow: the uncaught exception then terminates the process from here.

void LeakIntoVector(std::vector<std::vector<char>>& buffers, size_t bytes) {
  try {
    buffers.emplace_back(bytes, 'V');  // the fill writes every page
  } catch (const std::bad_alloc& e) {
    LogOutOfMemory(LeakPattern::kVector, e);
    throw;
  }
}

CacheEntry::CacheEntry(uint64_t request_id, std::string body)
    : request_id_(request_id), body_(std::move(body)) {}

// Out of line: the vtable's key function, so the vtable lives in this file.
CacheEntry::~CacheEntry() = default;

void LeakIntoCache(ResponseCache& cache, uint64_t request_id, size_t bytes) {
  try {
    // A "response" cached under its request id; nothing ever evicts it.
    cache.emplace("request-" + std::to_string(request_id),
                  std::make_unique<CacheEntry>(request_id, std::string(bytes, 'C')));
  } catch (const std::bad_alloc& e) {
    LogOutOfMemory(LeakPattern::kCache, e);
    throw;
  }
}

void LeakThroughCycle(std::vector<std::weak_ptr<CycleNode>>& cycles, size_t bytes) {
  try {
    auto a = std::make_shared<CycleNode>();
    auto b = std::make_shared<CycleNode>();
    a->payload.assign(bytes / 2, 'Y');
    b->payload.assign(bytes - bytes / 2, 'Y');
    a->peer = b;
    b->peer = a;
    cycles.emplace_back(a);
    // `a` and `b` go out of scope here: only the cycle keeps the nodes alive.
  } catch (const std::bad_alloc& e) {
    LogOutOfMemory(LeakPattern::kCycle, e);
    throw;
  }
}

void LeakIntoString(std::string& session_log, size_t bytes) {
  try {
    session_log.append(bytes, 'S');  // grows geometrically, copying as it goes
  } catch (const std::bad_alloc& e) {
    LogOutOfMemory(LeakPattern::kString, e);
    throw;
  }
}

void LeakedMemory::Leak(LeakPattern pattern, size_t bytes) {
  switch (pattern) {
    case LeakPattern::kVector:
      LeakIntoVector(vector_buffers_, bytes);
      return;
    case LeakPattern::kCache:
      LeakIntoCache(response_cache_, next_request_id_++, bytes);
      return;
    case LeakPattern::kCycle:
      LeakThroughCycle(cycles_, bytes);
      return;
    case LeakPattern::kString:
      LeakIntoString(session_log_, bytes);
      return;
  }
}

void LeakedMemory::ReleaseAll() {
  std::vector<std::vector<char>>().swap(vector_buffers_);
  ResponseCache().swap(response_cache_);
  for (auto& weak : cycles_) {
    if (auto node = weak.lock()) node->peer.reset();  // breaks the cycle; both nodes die
  }
  std::vector<std::weak_ptr<CycleNode>>().swap(cycles_);
  std::string().swap(session_log_);
  ::malloc_trim(0);
}

}  // namespace leakapp
