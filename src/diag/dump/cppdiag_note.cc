// Async-signal-safe: nothing here allocates, locks or uses stdio.
#include "diag/dump/cppdiag_note.h"

#include <cstring>

namespace cppdiag::dump {
namespace {

template <typename T>
void Put(uint8_t* out, size_t offset, T v) {
  std::memcpy(out + offset, &v, sizeof v);  // x86_64 is little-endian, as the layout says
}

}  // namespace

uint32_t DumpTypeNumber(DumpType type) {
  switch (type) {
    case DumpType::kMini:
      return 1;
    case DumpType::kHeap:
      return 2;
    case DumpType::kTriage:
      return 3;
    case DumpType::kFull:
      return 4;
  }
  return 0;
}

void EncodeCppdiagInfo(const CppdiagInfo& info, uint8_t* out) {
  std::memset(out, 0, kCppdiagInfoSize);
  Put<uint32_t>(out, 0, kCppdiagInfoVersion);
  Put<uint32_t>(out, 4, static_cast<uint32_t>(kCppdiagInfoSize));
  Put<int64_t>(out, 8, info.unix_time_sec);
  Put<uint32_t>(out, 16, info.unix_time_nsec);
  Put<int32_t>(out, 20, info.pid);
  Put<int32_t>(out, 24, info.signal);
  Put<uint32_t>(out, 28, info.dump_type);
  Put<uint32_t>(out, 32, info.cgroup_version);
  Put<uint32_t>(out, 36, info.threads);
  Put<uint64_t>(out, 40, info.cgroup_usage_bytes);
  Put<uint64_t>(out, 48, info.cgroup_limit_bytes);
  Put<uint32_t>(out, 56, info.threads_not_captured);
  size_t n = strnlen(info.reason, sizeof info.reason - 1);
  std::memcpy(out + 64, info.reason, n);
}

void CopyReason(const char* reason, CppdiagInfo* info) {
  size_t n = reason == nullptr ? 0 : strnlen(reason, sizeof info->reason - 1);
  if (n > 0) std::memcpy(info->reason, reason, n);
  info->reason[n] = '\0';
}

}  // namespace cppdiag::dump
