// The cppdiag note's layout and its decoder, header-only: the dump writer
// (cppdiag_note.h) and readers outside the runtime (the CLI's core reader)
// share them without linking the runtime.
//
// The cppdiag note: what a dump alone should tell about why and when it was
// written. Every cppdiag dump carries one, in the PT_NOTE segment after the
// kernel-style notes.
//
// Owner name "CPPDIAG", type kNtCppdiagInfo (0x43440001, "CD" + 1). The
// descriptor is little-endian, version 1, kCppdiagInfoSize (128) bytes:
//
//   offset size  field
//        0    4  version               1; a reader rejects versions it does not know
//                                      only if it needs fields they changed
//        4    4  size                  bytes of this descriptor (later versions
//                                      append fields; readers skip what they don't know)
//        8    8  unix_time_sec         int64, when the dump started (CLOCK_REALTIME)
//       16    4  unix_time_nsec
//       20    4  pid                   int32
//       24    4  signal                int32, the crashing signal, 0 on request
//       28    4  dump_type             .NET's numbers: 1 mini, 2 heap, 3 triage, 4 full
//       32    4  cgroup_version        0 when unknown, 1 or 2
//       36    4  threads               threads in the dump
//       40    8  cgroup_usage_bytes    UINT64_MAX when unknown
//       48    8  cgroup_limit_bytes    UINT64_MAX when there is no limit (or unknown)
//       56    4  threads_not_captured  threads whose registers only /proc could give
//       60    4  reserved              0
//       64   64  reason                NUL-terminated: "crash", "oom-watchdog", "on-demand"...
//
// DecodeCppdiagInfo is async-signal-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace cppdiag::dump {

inline constexpr char kCppdiagNoteName[] = "CPPDIAG";
inline constexpr uint32_t kNtCppdiagInfo = 0x43440001;
inline constexpr uint32_t kCppdiagInfoVersion = 1;
inline constexpr size_t kCppdiagInfoSize = 128;
inline constexpr uint64_t kCppdiagUnknown = UINT64_MAX;

struct CppdiagInfo {
  uint32_t version = kCppdiagInfoVersion;
  int64_t unix_time_sec = 0;
  uint32_t unix_time_nsec = 0;
  int32_t pid = 0;
  int32_t signal = 0;
  uint32_t dump_type = 0;  // .NET number, see DumpTypeNumber
  uint32_t cgroup_version = 0;
  uint32_t threads = 0;
  uint64_t cgroup_usage_bytes = kCppdiagUnknown;
  uint64_t cgroup_limit_bytes = kCppdiagUnknown;
  uint32_t threads_not_captured = 0;
  char reason[64] = {};
};

namespace cppdiag_note_internal {
template <typename T>
T Get(std::span<const uint8_t> in, size_t offset, T fallback) {
  if (offset + sizeof(T) > in.size()) return fallback;
  T v;
  std::memcpy(&v, in.data() + offset, sizeof v);  // x86_64 is little-endian, as the layout says
  return v;
}
}  // namespace cppdiag_note_internal

// Reads a descriptor of any version >= 1 (fields past `size` keep their
// defaults). Returns false if it is too short or malformed.
inline bool DecodeCppdiagInfo(std::span<const uint8_t> desc, CppdiagInfo* out) {
  using cppdiag_note_internal::Get;
  uint32_t version = Get<uint32_t>(desc, 0, 0);
  uint32_t size = Get<uint32_t>(desc, 4, 0);
  if (version < 1 || size < 64 || size > desc.size()) return false;
  std::span<const uint8_t> d = desc.first(size);
  CppdiagInfo info;
  info.version = version;
  info.unix_time_sec = Get<int64_t>(d, 8, 0);
  info.unix_time_nsec = Get<uint32_t>(d, 16, 0);
  info.pid = Get<int32_t>(d, 20, 0);
  info.signal = Get<int32_t>(d, 24, 0);
  info.dump_type = Get<uint32_t>(d, 28, 0);
  info.cgroup_version = Get<uint32_t>(d, 32, 0);
  info.threads = Get<uint32_t>(d, 36, 0);
  info.cgroup_usage_bytes = Get<uint64_t>(d, 40, kCppdiagUnknown);
  info.cgroup_limit_bytes = Get<uint64_t>(d, 48, kCppdiagUnknown);
  info.threads_not_captured = Get<uint32_t>(d, 56, 0);
  if (d.size() >= 128) {
    std::memcpy(info.reason, d.data() + 64, sizeof info.reason);
    info.reason[sizeof info.reason - 1] = '\0';
  }
  *out = info;
  return true;
}

}  // namespace cppdiag::dump
