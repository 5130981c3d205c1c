// Allocates a known number of live bytes from each of several named call
// sites (malloc, new, large blocks, calloc, realloc, posix_memalign), with
// freed churn between them, then prints, per site, the truth and the
// profiler's estimate of its live bytes (the stacks whose frame 0 is the
// site, named in process with dladdr).
//
//   heap_sites_target [PERIOD_BYTES=524288]
//   -> "site <name> <true_bytes> <estimated_bytes>" per site
#include <dlfcn.h>
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "diag/heap/heap_profile.h"
#include "diag/heap/heap_profiler.h"

namespace {
std::vector<void*> g_kept;
constexpr size_t kSiteBytes = size_t{48} << 20;

void Keep(void* p, size_t touch) {
  std::memset(p, 1, touch);
  g_kept.push_back(p);
}

// Freed again: must not count for any site.
__attribute__((noinline)) void Churn() {
  for (int i = 0; i < 2000; ++i) {
    void* p = std::malloc(64 + static_cast<size_t>(i) * 7);
    std::free(p);
  }
}
}  // namespace

extern "C" {
__attribute__((noinline)) size_t SiteSmallMalloc() {
  for (size_t n = 0; n < kSiteBytes; n += 48) Keep(std::malloc(48), 8);
  return kSiteBytes;
}
__attribute__((noinline)) size_t SiteMediumNew() {
  size_t n = 0;
  for (; n + 3000 <= kSiteBytes; n += 3000) Keep(new char[3000], 8);
  return n;
}
__attribute__((noinline)) size_t SiteLargeMalloc() {
  for (size_t n = 0; n < kSiteBytes; n += 1 << 20) Keep(std::malloc(1 << 20), 64);
  return kSiteBytes;
}
__attribute__((noinline)) size_t SiteCalloc() {
  size_t n = 0;
  for (; n + 20000 <= kSiteBytes; n += 20000) Keep(std::calloc(1, 20000), 8);
  return n;
}
// Each block grows by realloc from 100 bytes to 8 KiB: only the final size
// is live.
__attribute__((noinline)) size_t SiteRealloc() {
  size_t n = 0;
  for (; n + 8192 <= kSiteBytes; n += 8192) {
    void* p = std::realloc(nullptr, 100);
    for (size_t s = 1024; s <= 8192; s *= 2) p = std::realloc(p, s);
    Keep(p, 8192);
  }
  return n;
}
__attribute__((noinline)) size_t SitePosixMemalign() {
  size_t n = 0;
  for (; n + 5000 <= kSiteBytes; n += 5000) {
    void* p = nullptr;
    if (posix_memalign(&p, 64, 5000) != 0) std::abort();
    Keep(p, 8);
  }
  return n;
}
}  // extern "C"

int main(int argc, char** argv) {
  uint64_t period = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 512 * 1024;
  if (!cppdiag::heap::StartHeapProfiler(period)) return 2;
  g_kept.reserve(2 << 20);
  std::map<std::string, size_t> truth;
  truth["SiteSmallMalloc"] = SiteSmallMalloc();
  Churn();
  truth["SiteMediumNew"] = SiteMediumNew();
  Churn();
  truth["SiteLargeMalloc"] = SiteLargeMalloc();
  Churn();
  truth["SiteCalloc"] = SiteCalloc();
  Churn();
  truth["SiteRealloc"] = SiteRealloc();
  Churn();
  truth["SitePosixMemalign"] = SitePosixMemalign();
  cppdiag::heap::HeapProfile p = cppdiag::heap::CollectHeapProfile();
  std::map<std::string, double> estimate;
  for (const auto& s : p.stacks) {
    if (s.pcs.empty()) continue;
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(s.pcs[0] - 1), &info) != 0 && info.dli_sname != nullptr) {
      estimate[info.dli_sname] += s.estimated_bytes;
    }
  }
  for (const auto& [name, bytes] : truth) {
    std::printf("site %s %zu %.0f\n", name.c_str(), bytes, estimate[name]);
  }
  return 0;
}
