// heapstat [N]: the live-heap table of the cppdiag note (the sampling
// profiler's view when the dump was written): call stacks by estimated live
// bytes, largest first, the top N (default 20). Needs no symbols in the
// target: the stacks' pcs are resolved here from the core's modules (text:
// each pc's function, the one its inlined functions were inlined into).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "cli/analyze/command.h"
#include "cli/analyze/format.h"
#include "diag/heap/heap_note_layout.h"

namespace cppdiag::cli::analyze {
namespace {

// An estimate from the note (any double a hostile core holds) as a count.
uint64_t Rounded(double v) {
  if (!std::isfinite(v) || v <= 0) return 0;
  if (v >= 0x1p63) return uint64_t{1} << 63;
  return static_cast<uint64_t>(std::llround(v));
}

Result<CommandOutput> Heapstat(Session& session, const CommandArgs& args) {
  if (args.size() > 1) return Error::Invalid("usage: heapstat [N]");
  uint64_t top = 20;
  if (args.size() == 1) {
    CPPDIAG_ASSIGN_OR_RETURN(top, ParseCount(args[0], UINT32_MAX));
  }
  const CoreNote* found = nullptr;
  for (const CoreNote& n : session.core().notes()) {
    if (n.name == dump::kCppdiagNoteName && n.type == cppdiag::heap::kNtCppdiagHeap) {
      found = &n;
      break;
    }
  }
  if (found == nullptr) {
    return Error::Invalid(
        "this dump holds no live-heap table: it was not written by cppdiag with the heap "
        "profiler on (CPPDIAG_HEAP_SAMPLE_BYTES); try heap, which reads glibc's heap");
  }
  cppdiag::heap::HeapNote note;
  if (!cppdiag::heap::DecodeHeapNote(found->desc, &note)) {
    return Error::Invalid(fmt::format("note {} (CPPDIAG heap) is corrupt", found->index));
  }
  CPPDIAG_ASSIGN_OR_RETURN(CoreDebugInfo * debug, session.debug());
  std::vector<const cppdiag::heap::HeapNoteRecord*> records;
  double total_bytes = 0, total_count = 0;
  for (const cppdiag::heap::HeapNoteRecord& r : note.records) {
    records.push_back(&r);
    total_bytes += r.estimated_bytes;
    total_count += r.estimated_count;
  }
  std::stable_sort(records.begin(), records.end(), [](const auto* a, const auto* b) {
    return a->estimated_bytes > b->estimated_bytes;
  });
  CommandOutput out;
  out.text = fmt::format(
      "live heap, sampled every {}: about {} in {} objects ({} stacks, {} samples alive)\n"
      "allocated since start: {}\n\n",
      HumanBytes(note.sample_period_bytes), HumanBytes(Rounded(total_bytes)), Rounded(total_count),
      records.size(), note.live_samples, HumanBytes(note.total_allocated_bytes));
  out.json = {{"sample_period_bytes", note.sample_period_bytes},
              {"total_allocated_bytes", note.total_allocated_bytes},
              {"total_freed_bytes", note.total_freed_bytes},
              {"live_samples", note.live_samples},
              {"estimated_bytes", Rounded(total_bytes)},
              {"estimated_objects", Rounded(total_count)}};
  nlohmann::json stacks = nlohmann::json::array();
  out.text +=
      fmt::format("{:>12} {:>10}  {}\n", "EST BYTES", "EST OBJS", "STACK (innermost first)");
  for (size_t i = 0; i < records.size() && i < top; ++i) {
    const cppdiag::heap::HeapNoteRecord& r = *records[i];
    nlohmann::json frames = nlohmann::json::array();
    std::string text;
    for (size_t k = 0; k < r.pcs.size(); ++k) {
      // Return addresses: the call is the byte before.
      Frame f{.pc = r.pcs[k], .activation = false, .functions = debug->Symbolize(r.pcs[k] - 1)};
      if (const ModuleInfo* m = debug->ModuleAt(f.pc)) f.module = m->name;
      // The function the code at the pc belongs to, not the innermost one
      // inlined there: a leaking function often inlines its allocation
      // (std::vector's), which would hide it. JSON has them all.
      std::string line =
          f.functions.empty() ? TopFunctionText(f, *debug) : FunctionText(f.functions.back());
      if (f.functions.size() > 1) line += fmt::format(" [+{} inlined]", f.functions.size() - 1);
      text += fmt::format("{}{}\n", text.empty() ? "" : std::string(25, ' '), line);
      frames.push_back(FrameJson(f));
    }
    if (text.empty()) text = "(no frames)\n";
    out.text += fmt::format("{:>12} {:>10}  {}", HumanBytes(Rounded(r.estimated_bytes)),
                            Rounded(r.estimated_count), text);
    stacks.push_back({{"estimated_bytes", r.estimated_bytes},
                      {"estimated_objects", r.estimated_count},
                      {"sampled_count", r.sampled_count},
                      {"sampled_bytes", r.sampled_bytes},
                      {"frames", std::move(frames)}});
  }
  out.json["stacks"] = std::move(stacks);
  return out;
}

}  // namespace

const Command kHeapstatCommand{"heapstat", "heapstat [N]",
                               "the cppdiag note's sampled live heap: top N call stacks by "
                               "estimated live bytes",
                               Heapstat};

}  // namespace cppdiag::cli::analyze
