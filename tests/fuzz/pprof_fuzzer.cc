// libFuzzer target: any bytes given to `cppdiag heap report` or `heap diff`
// as a profile (gzipped or not) are parsed or refused with an error, never
// crash, hang or throw, through everything those commands do with a parsed
// profile (stacks, growth, the text and the flame graph page); and what
// parses encodes to a profile that decodes back to the same.
//
//   cmake --preset fuzz && cmake --build --preset fuzz --target pprof_fuzzer
//   build/fuzz/tests/fuzz/pprof_fuzzer -max_total_time=600 tests/fuzz/pprof_corpus
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cli/heap/flame_html.h"
#include "cli/heap/heap_view.h"
#include "cli/heap/pprof.h"

using namespace cppdiag::cli;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto profile = pprof::ParseProfile({reinterpret_cast<const char*>(data), size});
  if (!profile) return 0;
  auto again = pprof::Decode(pprof::Encode(*profile));
  if (!again || !(*again == *profile)) std::abort();
  auto stacks = heap::StacksByBytes(*profile);
  if (stacks) {
    (void)heap::FormatStacks(*stacks, 10, 12, /*growth=*/false);
    (void)heap::ProfileTotals(*profile);
  }
  if (auto growth = heap::Growth(pprof::Profile{.sample_types = profile->sample_types}, *profile)) {
    (void)heap::FormatStacks(*growth, 10, 12, /*growth=*/true);
    (void)heap::FlameGraphHtml(*growth, "fuzz");
  }
  return 0;
}
