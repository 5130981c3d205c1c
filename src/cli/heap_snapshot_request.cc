#include "cli/heap_snapshot_request.h"

#include <sys/stat.h>

#include <chrono>

#include "cli/discovery.h"
#include "cli/heap/heap_view.h"
#include "cli/heap/pprof.h"
#include "cli/heap/symbolizer.h"
#include "cli/target_watch.h"
#include "diag/ipc/client.h"
#include "diag/ipc/heap_snapshot.h"

namespace cppdiag::cli {

Result<HeapSnapshotDone> TakeHeapSnapshot(pid_t pid, const std::string& output, bool overwrite) {
  struct stat st {};
  if (!overwrite && ::lstat(output.c_str(), &st) == 0) {
    return Error(EEXIST, "", output + " exists (use --overwrite to replace it)");
  }
  auto target = FindTarget(pid);
  if (!target) return target.error();
  TargetWatch watch(target->pid);
  auto reply = ipc::Call(target->endpoint, ipc::Command::kHeapSnapshot, nlohmann::json::object(),
                         std::chrono::seconds(60));
  if (!reply && reply.error().code() != EINVAL && watch.Exited(std::chrono::seconds(2))) {
    return Error(ESRCH, "", watch.ExitedDuring("the heap snapshot"));
  }
  if (!reply) {
    return Error(
        reply.error().code(), "",
        "heap snapshot of process " + std::to_string(pid) + " failed: " + reply.error().message());
  }
  CPPDIAG_ASSIGN_OR_RETURN(::cppdiag::heap::HeapProfile heap, ipc::HeapProfileFromJson(*reply));
  if (heap.sample_period_bytes == 0) {
    return Error(EINVAL, "",
                 "process " + std::to_string(pid) +
                     " has its heap profiler off (sample period 0: start it with "
                     "CPPDIAG_HEAP_SAMPLE_BYTES > 0)");
  }
  heap::Symbolizer symbolizer(heap.mappings, "/proc/" + std::to_string(target->pid) + "/root");
  pprof::Profile profile = heap::BuildProfile(heap, symbolizer);
  CPPDIAG_RETURN_IF_ERROR(pprof::WriteProfileFile(profile, output, overwrite));
  auto stacks = heap::StacksByBytes(profile);
  auto totals = heap::ProfileTotals(profile);
  return HeapSnapshotDone{.name = target->name,
                          .stacks = stacks ? stacks->size() : 0,
                          .live_bytes = totals.bytes,
                          .live_objects = totals.objects,
                          .sample_period_bytes = heap.sample_period_bytes};
}

}  // namespace cppdiag::cli
