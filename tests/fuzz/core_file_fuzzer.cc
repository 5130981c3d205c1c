// libFuzzer target: any bytes given to the core reader (CoreFile::FromBytes,
// the same parser as a mapped file) either fail with one printable line or
// parse into notes and segments that stay inside the bytes; every note goes
// through every decoder, and memory is read at segment edges and at the
// threads' registers. Never a crash, a read past the input or a hang.
//
//   CMAKE_CXX_COMPILER_LAUNCHER=ccache cmake --preset fuzz
//   cmake --build --preset fuzz --target core_file_fuzzer
//   mkdir -p /tmp/core-corpus && cp tests/fuzz/corpus_core/* /tmp/core-corpus/
//   build/fuzz/tests/fuzz/core_file_fuzzer -max_len=65536 -max_total_time=600 /tmp/core-corpus
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli/analyze/core_file.h"
#include "cli/analyze/core_notes.h"

using namespace cppdiag;
using namespace cppdiag::cli::analyze;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

// One line a user may read: not empty, printable ASCII only.
void CheckMessage(const Error& e) {
  std::string m = e.message();
  Check(!m.empty());
  for (char c : m) Check(c >= 0x20 && c < 0x7f);
}

template <typename T>
void Ignore(const Result<T>& r) {
  if (!r.ok()) CheckMessage(r.error());
}

bool Inside(std::span<const uint8_t> inner, std::span<const uint8_t> outer) {
  return inner.empty() || (inner.data() >= outer.data() &&
                           inner.data() + inner.size() <= outer.data() + outer.size());
}

uint64_t g_sink;  // keeps the bytes read from being optimized away

void Read(const CoreFile& core, uint64_t vaddr, uint64_t len) {
  auto pieces = core.ReadMemory(vaddr, len);
  if (!pieces.ok()) {
    CheckMessage(pieces.error());
    return;
  }
  uint64_t at = vaddr, total = 0;
  for (const MemoryPiece& p : *pieces) {
    Check(p.vaddr == at && p.size > 0);
    Check(p.data.empty() || p.data.size() == p.size);
    Check(Inside(p.data, core.bytes()));
    for (uint8_t b : p.data) g_sink += b;  // touched, so ASan sees any stray view
    at += p.size;
    total += p.size;
  }
  Check(total == len);
  uint8_t buf[64];
  if (len <= sizeof buf) {
    auto stored = core.CopyMemory(vaddr, std::span<uint8_t>(buf, len));
    Check(stored.ok() && *stored <= len);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto core = CoreFile::FromBytes(std::vector<uint8_t>(data, data + size));
  if (!core.ok()) {
    CheckMessage(core.error());
    return 0;
  }
  for (const CoreNote& n : core->notes()) {
    Check(Inside(n.desc, core->bytes()));
    Check(n.offset < size);
    // Names and every decoder, whatever the type says, on the first notes
    // only: on all of them, an input of thousands of tiny notes spends its
    // run formatting error messages.
    if (n.index >= 16) continue;
    for (char c : NoteTypeName(n)) Check(c >= 0x20 && c < 0x7f);
    Ignore(DecodePrstatus(n));
    Ignore(DecodePrpsinfo(n));
    Ignore(DecodeSiginfo(n));
    Ignore(DecodeAuxv(n));
    Ignore(DecodeCppdiagNote(n));
    if (auto f = DecodeFileNote(n); f.ok()) {
      for (const FileMapping& m : f->mappings) {
        Check(m.start <= m.end);
        Check(Inside({reinterpret_cast<const uint8_t*>(m.path.data()), m.path.size()}, n.desc));
        g_sink += Printable(m.path).size();
      }
    } else {
      CheckMessage(f.error());
    }
  }
  uint64_t previous_end = 0;
  size_t i = 0;
  for (const LoadSegment& s : core->loads()) {
    Check(s.filesz <= s.memsz && s.vaddr >= previous_end);
    previous_end = s.end();
    Check(core->FindLoad(s.vaddr) == &s && core->FindLoad(s.end() - 1) == &s);
    if (i++ < 8) {
      Read(*core, s.vaddr, std::min<uint64_t>(s.memsz, 16));
      Read(*core, s.end() - 1, 1);
      Read(*core, s.vaddr + s.filesz - (s.filesz > 0 ? 1 : 0), 2);  // across the stored end
      Read(*core, s.end() - 4, 8);                                  // across the segment's end
    }
  }
  Read(*core, UINT64_MAX - 7, 8);
  auto notes = DecodeNotes(*core);
  if (!notes.ok()) {
    CheckMessage(notes.error());
    return 0;
  }
  for (const ThreadInfo& t : notes->threads) {
    Read(*core, t.regs.rsp, 64);
    Read(*core, t.regs.rip, 16);
  }
  if (notes->siginfo && notes->siginfo->fault_address)
    Read(*core, *notes->siginfo->fault_address, 8);
  if (notes->process) g_sink += Printable(notes->process->psargs).size();
  return 0;
}
