// The counters the CLI computes from samples (catalog kind kDerived): what a
// single sample gives (cgroup memory percent) and rates between two
// consecutive samples of the same process, over the target's monotonic clock.
//
//   AddDerived(&previous, &current);  // previous may be null: no rates yet
//
// CPU is reported twice so that a reader never has to guess the basis:
// cppdiag_process_cpu_core_percent (100 = one core busy) always, and
// cppdiag_process_cpu_quota_percent (100 = the whole cgroup CPU quota) only
// when the target's cgroup has a quota.
#pragma once

#include "diag/counters/sample.h"

namespace cppdiag::counters {

void AddDerived(const Sample* previous, Sample* current);

}  // namespace cppdiag::counters
