// cppdiag heap snapshot | report | diff: the live sampled heap of a process
// as a pprof profile (symbolized here, out of process), the stacks that hold
// the most, and the stacks that grew between two snapshots.
#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/discovery.h"
#include "cli/display.h"
#include "cli/heap/flame_html.h"
#include "cli/heap/heap_view.h"
#include "cli/heap/pprof.h"
#include "cli/heap/symbolizer.h"
#include "cli/heap_snapshot_request.h"
#include "cli/target_watch.h"
#include "common/io.h"
#include "common/parse.h"
#include "diag/ipc/client.h"
#include "diag/ipc/heap_snapshot.h"

namespace cppdiag::cli {
namespace {

struct HeapOptions {
  int pid = 0;
  std::string output;
  bool overwrite = false;
  std::string file;
  std::string before, after;
  std::string html;
  size_t top = 10;
  size_t frames = 12;
};

std::string Bytes(double b) {
  return FormatBytes(static_cast<uint64_t>(std::llround(std::max(b, 0.0))));
}

int Snapshot(const HeapOptions& o) {
  auto done = TakeHeapSnapshot(o.pid, o.output, o.overwrite);
  if (!done) return Fail(done.error().message());
  std::printf(
      "Wrote %s: process %d (%s), %zu stack(s), estimated live heap %s in %.0f objects "
      "(sample period %s)\n",
      o.output.c_str(), o.pid, ForTerminal(done->name).c_str(), done->stacks,
      Bytes(done->live_bytes).c_str(), done->live_objects,
      FormatBytes(done->sample_period_bytes).c_str());
  return 0;
}

int Report(const HeapOptions& o) {
  auto profile = pprof::ReadProfileFile(o.file);
  if (!profile) return Fail(profile.error().message());
  auto stacks = heap::StacksByBytes(*profile);
  if (!stacks) return Fail(o.file + ": " + stacks.error().message());
  auto totals = heap::ProfileTotals(*profile);
  std::printf("%s: estimated live heap %s in %.0f objects, %zu stack(s) (sample period %s)\n",
              o.file.c_str(), Bytes(totals.bytes).c_str(), totals.objects, stacks->size(),
              FormatBytes(static_cast<uint64_t>(std::max<int64_t>(profile->period, 0))).c_str());
  std::fputs(heap::FormatStacks(*stacks, o.top, o.frames, /*growth=*/false).c_str(), stdout);
  return 0;
}

int Diff(const HeapOptions& o) {
  auto before = pprof::ReadProfileFile(o.before);
  if (!before) return Fail(before.error().message());
  auto after = pprof::ReadProfileFile(o.after);
  if (!after) return Fail(after.error().message());
  auto growth = heap::Growth(*before, *after);
  if (!growth) return Fail(growth.error().message());
  auto a = heap::ProfileTotals(*before);
  auto b = heap::ProfileTotals(*after);
  double grown = 0;
  for (const auto& s : *growth) grown += s.bytes;
  std::printf("%s -> %s: live heap %s -> %s; %zu stack(s) grew by %s in all\n", o.before.c_str(),
              o.after.c_str(), Bytes(a.bytes).c_str(), Bytes(b.bytes).c_str(), growth->size(),
              Bytes(grown).c_str());
  std::fputs(heap::FormatStacks(*growth, o.top, o.frames, /*growth=*/true).c_str(), stdout);
  if (!o.html.empty()) {
    std::string page = heap::FlameGraphHtml(*growth, o.before + " \u2192 " + o.after);
    if (auto w = WriteStringToFile(o.html, page, 0600); !w) return Fail(w.error().message());
    std::printf("Wrote flame graph of the growth to %s\n", o.html.c_str());
  }
  return 0;
}

}  // namespace

void AddHeapCommand(CLI::App& app, int* exit_code) {
  auto* heap = app.add_subcommand("heap", "Live heap by call stack (pprof), and its growth");
  heap->require_subcommand(1);
  auto o = std::make_shared<HeapOptions>();

  auto* snapshot = heap->add_subcommand(
      "snapshot", "Write the live sampled heap of a process as a gzipped pprof profile");
  snapshot->add_option("-p,--process-id", o->pid, "Target process id")->required();
  snapshot->add_option("-o,--output", o->output, "Profile to write (.pb.gz)")->required();
  snapshot->add_flag("--overwrite", o->overwrite, "Replace an existing file");
  snapshot->callback([o, exit_code] { *exit_code = Snapshot(*o); });

  auto* report = heap->add_subcommand("report", "Top call stacks of a profile by live bytes");
  report->add_option("file", o->file, "A heap profile (.pb.gz)")->required();
  report->add_option("--top", o->top, "How many stacks to show")->capture_default_str();
  report->add_option("--frames", o->frames, "Frames shown per stack")->capture_default_str();
  report->callback([o, exit_code] { *exit_code = Report(*o); });

  auto* diff = heap->add_subcommand("diff", "Call stacks whose live bytes grew from A to B");
  diff->add_option("before", o->before, "The earlier profile")->required();
  diff->add_option("after", o->after, "The later profile")->required();
  diff->add_option("--top", o->top, "How many stacks to show")->capture_default_str();
  diff->add_option("--frames", o->frames, "Frames shown per stack")->capture_default_str();
  diff->add_option("--html", o->html, "Also write a flame graph of the growth to this page");
  diff->callback([o, exit_code] { *exit_code = Diff(*o); });
}

}  // namespace cppdiag::cli
