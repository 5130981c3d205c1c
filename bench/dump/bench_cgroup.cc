#include "bench_cgroup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "common/cgroup.h"
#include "common/io.h"

namespace cppdiag::bench {

bool BenchCgroup::Create(const char* name) { return Make(name, true); }
bool BenchCgroup::CreateForChildren(const char* name) { return Make(name, false); }

bool BenchCgroup::Make(const char* name, bool join) {
  auto found = CgroupReader().FindMemoryCgroup();
  if (!found || found->first != 1) {
    std::fprintf(stderr, "a cgroup measurement needs the v1 memory controller; skipped\n");
    return false;
  }
  parent_ = found->second;
  dir_ = parent_ + "/" + name + "-" + std::to_string(::getpid());
  if (::mkdir(dir_.c_str(), 0755) != 0 ||
      (join && !WriteStringToFile(procs_path(), std::to_string(::getpid())).ok())) {
    std::fprintf(stderr, "cannot create %s; skipped\n", dir_.c_str());
    ::rmdir(dir_.c_str());
    dir_.clear();
    return false;
  }
  joined_ = join;
  return true;
}

BenchCgroup::~BenchCgroup() {
  if (dir_.empty()) return;
  if (joined_) (void)WriteStringToFile(parent_ + "/cgroup.procs", std::to_string(::getpid()));
  ::rmdir(dir_.c_str());
}

uint64_t BenchCgroup::Usage() const { return Read("memory.usage_in_bytes"); }
void BenchCgroup::ResetPeak() const {
  (void)WriteStringToFile(dir_ + "/memory.max_usage_in_bytes", "0");
}
uint64_t BenchCgroup::Peak() const { return Read("memory.max_usage_in_bytes"); }
void BenchCgroup::DropCache() const { (void)WriteStringToFile(dir_ + "/memory.force_empty", "0"); }

uint64_t BenchCgroup::Read(const char* file) const {
  auto s = ReadFileToString(dir_ + "/" + file);
  return s ? std::strtoull(s->c_str(), nullptr, 10) : 0;
}

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

}  // namespace cppdiag::bench
