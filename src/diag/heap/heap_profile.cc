#include "diag/heap/heap_profile.h"

#include <elf.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "diag/heap/heap_profiler.h"
#include "diag/heap/sampler.h"

namespace cppdiag::heap {
namespace {

// A copy of one stack record, made under the table lock without allocating.
struct RawStack {
  uint32_t depth;
  uint64_t pcs[kMaxFrames];
  uint64_t live_count, live_bytes;
  double est_count, est_bytes;
};

std::string Hex(const unsigned char* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

// GNU build-ids of the loaded objects, by path, read from their in-memory
// PT_NOTE segments (no file I/O).
int AddBuildId(dl_phdr_info* info, size_t, void* data) {
  auto* ids = static_cast<std::map<std::string, std::string>*>(data);
  std::string name = info->dlpi_name ? info->dlpi_name : "";
  if (name.empty()) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf));
    if (n <= 0) return 0;
    name.assign(buf, static_cast<size_t>(n));
  }
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const auto* p = reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr);
    const unsigned char* end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const auto* nh = reinterpret_cast<const ElfW(Nhdr)*>(p);
      size_t name_sz = (nh->n_namesz + 3) & ~size_t{3};
      size_t desc_sz = (nh->n_descsz + 3) & ~size_t{3};
      const unsigned char* desc = p + sizeof(ElfW(Nhdr)) + name_sz;
      if (desc + nh->n_descsz > end) break;
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
          std::memcmp(p + sizeof(ElfW(Nhdr)), "GNU", 4) == 0) {
        (*ids)[name] = Hex(desc, nh->n_descsz);
        return 0;
      }
      p = desc + desc_sz;
    }
  }
  return 0;
}

}  // namespace

std::vector<HeapMapping> ExecutableMappings() {
  std::map<std::string, std::string> ids;
  dl_iterate_phdr(AddBuildId, &ids);
  std::vector<HeapMapping> out;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    in >> range >> perms >> offset >> dev >> inode;
    std::getline(in >> std::ws, path);
    if (perms.size() < 3 || perms[2] != 'x' || path.empty() || path[0] == '[') continue;
    HeapMapping m;
    size_t dash = range.find('-');
    if (dash == std::string::npos) continue;
    m.start = std::stoull(range.substr(0, dash), nullptr, 16);
    m.end = std::stoull(range.substr(dash + 1), nullptr, 16);
    m.offset = std::stoull(offset, nullptr, 16);
    m.path = path;
    if (auto it = ids.find(path); it != ids.end()) m.build_id = it->second;
    out.push_back(std::move(m));
  }
  return out;
}

HeapProfile CollectHeapProfile() {
  HeapProfile profile;
  LiveTable* table = ProfilerTable();
  uint64_t period = HeapSamplePeriod();
  if (table == nullptr || period == 0) return profile;
  profile.sample_period_bytes = period;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  profile.time_unix_ns = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  profile.total_allocated_bytes = HeapTotalAllocatedBytes();
  profile.total_freed_bytes = HeapTotalFreedBytes();

  // Allocate first, copy under the lock: an allocation while holding it could
  // sample (or free a sampled block) and wait on the lock it holds.
  size_t cap = table->stack_count() + 256;
  auto raw = std::make_unique<RawStack[]>(cap);
  size_t n = 0;
  table->Lock();
  size_t used = table->stack_count();
  for (size_t i = 0; i < used && n < cap; ++i) {
    const StackRecord& s = table->stack(i);
    if (s.live_count == 0) continue;
    RawStack& r = raw[n++];
    r.depth = s.depth;
    std::memcpy(r.pcs, s.pcs, s.depth * sizeof(uint64_t));
    r.live_count = s.live_count;
    r.live_bytes = s.live_bytes;
    r.est_count = s.est_count;
    r.est_bytes = s.est_bytes;
  }
  table->Unlock();

  profile.stacks.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const RawStack& r = raw[i];
    HeapStackSample s;
    s.pcs.assign(r.pcs, r.pcs + r.depth);
    s.sampled_count = r.live_count;
    s.sampled_bytes = r.live_bytes;
    s.estimated_count = r.est_count;
    s.estimated_bytes = r.est_bytes;
    profile.stacks.push_back(std::move(s));
  }
  profile.mappings = ExecutableMappings();
  return profile;
}

uint64_t HeapSampleCursor() {
  LiveTable* table = ProfilerTable();
  return table == nullptr ? 0 : table->recent_next();
}

}  // namespace cppdiag::heap
