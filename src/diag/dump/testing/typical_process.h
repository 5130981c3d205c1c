// A fake process laid out like a real dynamically linked one, for unit tests
// of the plan and the writer: executable (ELF header, text, relro with the
// dynamic section, data), heap, libc, the dynamic linker with r_debug and
// link_maps, a thread stack with a guard page, [stack], [vvar], [vdso], a
// shared file mapping and shared anonymous memory.
#pragma once

#include <cstdint>
#include <memory>

#include "diag/dump/testing/fake_process_snapshot.h"

namespace cppdiag::dump::testing {

struct TypicalProcess {
  static constexpr uint64_t kExe = 0x555555554000;
  static constexpr uint64_t kExeText = kExe + 0x1000;
  static constexpr uint64_t kExeRodata = kExe + 0x2000;
  static constexpr uint64_t kExeRelro = kExe + 0x3000;  // .dynamic at +0xe00, a private copy
  static constexpr uint64_t kExeData = kExe + 0x4000;
  static constexpr uint64_t kHeap = 0x555555559000;  // 16 pages
  static constexpr uint64_t kHeapMarker = kHeap + 0x100;
  static constexpr uint64_t kLibcLinkMap = kHeap + 0x2000;  // dlopen-style: link_map in the heap
  static constexpr uint64_t kHeapSecret = kHeap + 0x2800;   // same page as that link_map
  static constexpr uint64_t kThreadGuard = 0x7ffff79ff000;
  static constexpr uint64_t kThreadStack = 0x7ffff7a00000;  // 64 pages
  static constexpr uint64_t kThreadSp = kThreadStack + 60 * 0x1000ULL + 0x800;
  static constexpr uint64_t kLibc = 0x7ffff7d00000;
  static constexpr uint64_t kSharedFile = 0x7ffff7e00000;
  static constexpr uint64_t kSharedAnon = 0x7ffff7e10000;
  static constexpr uint64_t kLdso = 0x7ffff7f00000;
  static constexpr uint64_t kLdsoData = kLdso + 0x1000;  // r_debug at +0x100, main link_map +0x200
  static constexpr uint64_t kVvar = 0x7ffff7fc0000;
  static constexpr uint64_t kVdso = 0x7ffff7fc4000;
  static constexpr uint64_t kStack = 0x7ffffffde000;  // 33 pages
  static constexpr uint64_t kMainSp = kStack + 32 * 0x1000ULL + 0x200;
  static constexpr char kMarker[] = "CPPDIAG-UNIT-MARKER";
  static constexpr char kSecret[] = "SECRET-IN-HEAP-PAGE";
  static constexpr pid_t kMainTid = 4242;
  static constexpr pid_t kWorkerTid = 4243;
};

std::unique_ptr<FakeProcessSnapshot> MakeTypicalProcess();

}  // namespace cppdiag::dump::testing
